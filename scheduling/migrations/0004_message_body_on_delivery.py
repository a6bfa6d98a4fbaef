# The body is stored once, on the delivery (issue 12).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invitations', '0004_delivery_without_message'),
        ('scheduling', '0003_message_delivery'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='schedulingmessage',
            name='body',
        ),
        migrations.AlterField(
            model_name='schedulingmessage',
            name='delivery',
            field=models.OneToOneField(help_text='The email of this message, with the body exactly as received.', on_delete=django.db.models.deletion.CASCADE, related_name='scheduling_message', to='invitations.delivery'),
        ),
    ]
