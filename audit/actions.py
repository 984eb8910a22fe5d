"""The actions the code base records today, with the names the viewer shows for them."""

from django.utils.translation import gettext_lazy as _

# How the viewer names the actions it knows; an unknown action is shown by its dotted code.
ACTION_LABELS = {
    "auth.login.succeeded": _("ログイン成功"),
    "auth.login.failed": _("ログイン失敗"),
    "auth.lockout": _("アカウントロック"),
    "auth.logout": _("ログアウト"),
    "tenant.created": _("テナント作成"),
    "user.created": _("ユーザー作成"),
    "member.viewed": _("名簿の閲覧"),
    "checkup.viewed": _("健診結果の閲覧"),
    "roster.imported": _("名簿の取り込み"),
    "label.granted": _("権限ラベルの付与"),
    "export.downloaded": _("エクスポートのダウンロード"),
    "tenant.purged": _("テナントの消去"),
    "audit.exported": _("監査ログのエクスポート"),
    "audit.ship_failed": _("監査ログの転送失敗"),
}
