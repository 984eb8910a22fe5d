"""The actions the code base records today, with the names the viewer shows for them."""

from django.utils.translation import gettext_lazy as _

# Reads of checkup results, and the events whose target says something of a record's findings (the
# records listed as awaiting a 就業判定, a follow-up the physician asked for): their target and details are
# withheld from readers of the log without checkup.view (audit.selectors), and audit.services salts their
# details so the hash gives nothing away.
HEALTH_READS = frozenset({
    "checkup.viewed", "checkup.queue_viewed", "checkup.results_listed", "checkup.conclusions_viewed",
    "checkup.follow_up_recorded", "checkup.follow_up_undone", "checkup.unexamined_listed",
    "checkup.guidance_targets_listed", "checkup.guidance_viewed", "checkup.guidance_recorded",
    "checkup.guidance_withdrawn",
})  # fmt: skip
# Of those, the events a person records about themself ("受診しました": they were asked to see a doctor):
# there the actor is the person, withheld too.
SELF_REPORTS = frozenset({"checkup.follow_up_recorded", "checkup.follow_up_undone"})

# How the viewer names the actions it knows; an unknown action is shown by its dotted code.
ACTION_LABELS = {
    # Sign-in and accounts
    "auth.login.succeeded": _("ログイン成功"),
    "auth.login.failed": _("ログイン失敗"),
    "auth.lockout": _("アカウントロック"),
    "auth.logout": _("ログアウト"),
    "auth.password.changed": _("パスワード変更"),
    "auth.password_reset.requested": _("パスワード再設定の申請"),
    "auth.password_reset.completed": _("パスワード再設定の完了"),
    "auth.password_reset.rate_limited": _("パスワード再設定の回数制限"),
    "auth.login.rate_limited": _("ログインの回数制限（接続元）"),
    "auth.registration.requested": _("利用登録の申請"),
    "auth.registration.confirmed": _("利用登録の完了"),
    "auth.registration.rate_limited": _("利用登録の回数制限"),
    "auth.registration.purged": _("期限切れ利用登録の削除"),
    "auth.mfa.enrolled": _("多要素認証の登録"),
    "auth.mfa.enrolment_failed": _("多要素認証の登録失敗"),
    "auth.mfa.verified": _("多要素認証の成功"),
    "auth.mfa.failed": _("多要素認証の失敗"),
    "auth.mfa.code_sent": _("確認コードの送信"),
    "auth.mfa.backup_codes_generated": _("バックアップコードの発行"),
    "auth.mfa.device_removed": _("認証方法の削除"),
    "auth.mfa.reset": _("多要素認証のリセット（運用者）"),
    "auth.lockout.cleared": _("アカウントロックの解除（運用者）"),
    "user.created": _("ユーザー作成"),
    "user.changed": _("ユーザーの変更（運用者）"),
    # Tenants
    "tenant.created": _("テナント作成"),
    "tenant.changed": _("テナントの変更（運用者）"),
    "tenant.purged": _("テナントの消去"),
    "tenant.keys_rotated": _("データ鍵のローテーション"),
    "tenant.keys_destroyed": _("データ鍵の破棄（暗号化消去）"),
    "crypto.master_key_rewrapped": _("マスター鍵での鍵の再ラップ"),
    "tenant.allowlist.changed": _("接続元IP制限の変更"),
    "tenant.allowlist.denied": _("接続元IP制限による拒否"),
    "tenant.security_policy.changed": _("セキュリティ設定の変更"),
    # Roster and permission labels
    "member.viewed": _("名簿の閲覧"),
    "roster.imported": _("名簿の取り込み"),
    "roster.import_failed": _("名簿の取り込みの中断（反映済みの分は残ります）"),
    "roster.qualifications.expired": _("資格喪失日による無効化"),
    "label.granted": _("権限ラベルの付与"),
    "label.grant_changed": _("権限ラベルの変更"),
    "label.revoked": _("権限ラベルの取り消し"),
    "team.created": _("チームの作成"),
    "team.join_requested": _("チームへの参加・参加申請"),
    "team.join_approved": _("チームへの参加申請の承認"),
    "team.join_rejected": _("チームへの参加申請の却下"),
    "team.left": _("チームからの脱退"),
    "team.dissolved": _("チームの解散"),
    # Checkups
    "checkup.viewed": _("健診結果の閲覧"),
    "checkup.conclusions_viewed": _("就業判定の閲覧"),
    "checkup.queue_viewed": _("就業判定の待ち一覧の閲覧"),
    "checkup.results_listed": _("健診結果の一覧の閲覧"),
    "checkup.guidance_summary_viewed": _("特定健診の受診率と階層化の閲覧"),
    "checkup.unexamined_listed": _("特定健診の未受診者の一覧の閲覧"),
    "checkup.imported": _("健診結果の取り込み"),
    "checkup.import_failed": _("健診結果の取り込みの中断（反映済みの分は残ります）"),
    "checkup.judged": _("健診結果の判定"),
    "checkup.corrected": _("健診結果の訂正（訂正前の値を履歴に保存）"),
    "checkup.opinion_signed": _("医師の意見・就業判定の登録"),
    "checkup.follow_up_recorded": _("事後措置の記録"),
    "checkup.follow_up_undone": _("事後措置の記録の取り消し"),
    "checkup.guidance_targets_listed": _("特定保健指導の対象者の一覧の閲覧"),
    "checkup.guidance_viewed": _("特定保健指導の実施状況の閲覧"),
    "checkup.guidance_recorded": _("特定保健指導の実施状況の記録"),
    "checkup.guidance_withdrawn": _("特定保健指導の記録の取り消し"),
    "checkup.csv_mapping_saved": _("健診CSVの項目対応の保存"),
    "checkup.csv_mapping_deleted": _("健診CSVの項目対応の削除"),
    "criteria.version_created": _("判定基準の版の作成"),
    "criteria.version_activated": _("判定基準の版の有効化"),
    # Exports and the audit log itself
    "export.downloaded": _("エクスポートのダウンロード"),
    "audit.exported": _("監査ログのエクスポート"),
    "audit.pruned": _("監査ログの保存期間経過分の削除"),
    "audit.ship_failed": _("監査ログの転送失敗"),
}
