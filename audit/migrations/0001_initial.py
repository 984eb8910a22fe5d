# Created as managed tables; 0002 adds triggers and row-level security and marks them unmanaged.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenants', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChain',
            fields=[
                ('chain', models.CharField(max_length=24, primary_key=True, serialize=False)),
                ('seq', models.BigIntegerField(default=0)),
                ('hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('shipped_seq', models.BigIntegerField(default=0)),
                ('shipped_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('shipped_at', models.DateTimeField(null=True)),
                ('pruned_seq', models.BigIntegerField(default=0)),
                ('pruned_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('tenant', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
            ],
            options={
                'managed': True,
            },
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('chain', models.CharField(editable=False, max_length=24)),
                ('seq', models.BigIntegerField(editable=False)),
                ('occurred_at', models.DateTimeField(editable=False, verbose_name='日時')),
                ('actor_id', models.BigIntegerField(editable=False, null=True, verbose_name='操作者')),
                ('actor_role', models.CharField(blank=True, editable=False, max_length=20, verbose_name='ロール')),
                ('action', models.CharField(editable=False, max_length=64, verbose_name='操作')),
                ('target_type', models.CharField(blank=True, editable=False, max_length=64, verbose_name='対象の種類')),
                ('target_id', models.CharField(blank=True, editable=False, max_length=64, verbose_name='対象ID')),
                ('outcome', models.CharField(choices=[('success', '成功'), ('failure', '失敗'), ('denied', '拒否')], editable=False, max_length=16, verbose_name='結果')),
                ('client_ip', models.CharField(blank=True, editable=False, max_length=45, verbose_name='IPアドレス')),
                ('user_agent', models.CharField(blank=True, editable=False, max_length=256)),
                ('request_id', models.CharField(blank=True, editable=False, max_length=64, verbose_name='リクエストID')),
                ('details', models.JSONField(default=dict, editable=False, verbose_name='詳細')),
                ('prev_hash', models.CharField(editable=False, max_length=64)),
                ('hash', models.CharField(editable=False, max_length=64)),
                ('tenant', models.ForeignKey(db_constraint=False, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': '監査ログ',
                'verbose_name_plural': '監査ログ',
                'managed': True,
                'indexes': [models.Index(fields=['tenant', 'occurred_at', 'id'], name='audit_event_viewer_idx')],
                'constraints': [models.UniqueConstraint(fields=('chain', 'seq'), name='audit_event_chain_seq_unique')],
            },
        ),
    ]
