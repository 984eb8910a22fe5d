from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.api import MeView

api_v1 = [
    path("me/", MeView.as_view(), name="me"),
]

urlpatterns = [
    path("", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ops/admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
