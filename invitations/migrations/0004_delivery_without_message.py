# The outbox no longer points at how a message arrived (issue 12): scheduling 0003 copied the
# payload onto each delivery and made the message point to its delivery instead.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invitations', '0003_delivery_payload'),
        ('scheduling', '0003_message_delivery'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='delivery',
            name='delivery_one_per_message_recipient',
        ),
        migrations.RemoveField(
            model_name='delivery',
            name='message',
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'itip'), _negated=True), models.Q(('method__in', ['REQUEST', 'REPLY', 'CANCEL']), ('body__isnull', False)), _connector='OR'), name='delivery_itip_has_method_and_body'),
        ),
    ]
