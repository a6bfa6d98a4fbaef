# A scheduling message points to its delivery, which now carries the payload (issue 12).
# The data migration copies each message's body, method, addresses and iTIP identity onto its
# delivery (one UPDATE per column, done by the database), then links the message to it.

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

COPIED = ("body", "method", "sender", "uid", "recurrence_id", "sequence", "dtstamp")


def payload_to_deliveries(apps, schema_editor):
    Delivery = apps.get_model("invitations", "Delivery")
    SchedulingMessage = apps.get_model("scheduling", "SchedulingMessage")
    of_message = SchedulingMessage.objects.filter(pk=OuterRef("message_id"))
    Delivery.objects.filter(message__isnull=False).update(
        kind="itip",
        **{name: Subquery(of_message.values(name)[:1]) for name in COPIED},
    )
    SchedulingMessage.objects.update(
        delivery=Subquery(
            Delivery.objects.filter(message_id=OuterRef("pk")).order_by("pk").values("pk")[:1]
        )
    )


def payload_to_messages(apps, schema_editor):
    Delivery = apps.get_model("invitations", "Delivery")
    SchedulingMessage = apps.get_model("scheduling", "SchedulingMessage")
    SchedulingMessage.objects.update(
        body=Subquery(Delivery.objects.filter(pk=OuterRef("delivery_id")).values("body")[:1])
    )


class Migration(migrations.Migration):

    dependencies = [
        ('invitations', '0003_delivery_payload'),
        ('scheduling', '0002_refused_callback'),
    ]

    operations = [
        migrations.AddField(
            model_name='schedulingmessage',
            name='delivery',
            field=models.OneToOneField(null=True, help_text='The email of this message, with the body exactly as received.', on_delete=django.db.models.deletion.CASCADE, related_name='scheduling_message', to='invitations.delivery'),
        ),
        migrations.AlterField(
            model_name='schedulingmessage',
            name='body',
            field=models.BinaryField(null=True, help_text='The iCalendar body exactly as received.'),
        ),
        migrations.RunPython(payload_to_deliveries, payload_to_messages, elidable=False),
    ]
