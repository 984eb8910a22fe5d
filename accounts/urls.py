from django.urls import include, path

from accounts import access_views, views

app_name = "accounts"

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("", include("accounts.auth_urls")),
    path("", include("accounts.roster_urls")),
    path("settings/access/", access_views.access_settings, name="access-settings"),
    path("settings/access/office/<int:office_id>/new/", access_views.grant_new, name="grant-new"),
    path("settings/access/<int:grant_id>/edit/", access_views.grant_edit, name="grant-edit"),
    path("settings/access/<int:grant_id>/delete/", access_views.grant_delete, name="grant-delete"),
    path("settings/access-review/", access_views.access_review, name="access-review"),
    path("roster/", access_views.roster, name="roster"),
    path("roster/<int:member_id>/", access_views.roster_member, name="roster-member"),
    path("teams/", access_views.teams, name="teams"),
    path("teams/<int:team_id>/", access_views.team_detail, name="team"),
    path("teams/<int:team_id>/<slug:action>/", access_views.team_action, name="team-action"),
]
