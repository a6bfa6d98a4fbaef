# The outbox carries its own payload (issue 12): kind, sender, the calendar message (method,
# body, UID, RECURRENCE-ID, SEQUENCE, DTSTAMP), the recipient's language and zone, and the
# booking or Google account a notice is about. The link to scheduling goes in 0004, after
# scheduling 0003 has copied each message's payload here.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calendars', '0006_booking_no_overlap_postgres'),
        ('invitations', '0002_inbound_reply'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='delivery',
            name='delivery_status_valid',
        ),
        migrations.AddField(
            model_name='delivery',
            name='body',
            field=models.BinaryField(blank=True, null=True, verbose_name='iCalendar body'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='booking',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deliveries', to='calendars.booking'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='dtstamp',
            field=models.DateTimeField(blank=True, null=True, verbose_name='DTSTAMP'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='google_account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deliveries', to='calendars.googleaccount'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='kind',
            field=models.CharField(choices=[('itip', 'Calendar message (iTIP)'), ('booking_request', 'New booking request (to the subscriber)'), ('booking_auto_confirmed', 'Booking confirmed (to the subscriber)'), ('google_revoked', 'Google access revoked (to the subscriber)')], default='itip', max_length=32),
        ),
        migrations.AddField(
            model_name='delivery',
            name='language',
            field=models.CharField(blank=True, max_length=8),
        ),
        migrations.AddField(
            model_name='delivery',
            name='method',
            field=models.CharField(blank=True, choices=[('REQUEST', 'Request'), ('REPLY', 'Reply'), ('CANCEL', 'Cancel')], max_length=8, verbose_name='iTIP method'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='recurrence_id',
            field=models.CharField(blank=True, help_text='ISO 8601, empty for the series.', max_length=64, verbose_name='RECURRENCE-ID'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='sender',
            field=models.EmailField(default='', help_text='On whose behalf it is sent (the iTIP sender).', max_length=254),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='delivery',
            name='sequence',
            field=models.PositiveIntegerField(default=0, verbose_name='SEQUENCE'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='time_zone',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name='delivery',
            name='uid',
            field=models.CharField(blank=True, max_length=1024, verbose_name='UID'),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed, will retry'), ('dead', 'Dead'), ('skipped', 'Not needed any more')], default='pending', max_length=16),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['uid', 'recipient'], name='delivery_uid_recipient'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'sending', 'sent', 'failed', 'dead', 'skipped'])), name='delivery_status_valid'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['itip', 'booking_request', 'booking_auto_confirmed', 'google_revoked'])), name='delivery_kind_valid'),
        ),
    ]
