from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from catalog.api import FeedbackViewSet, PersonViewSet, ProductViewSet
from catalog.lab import LabFeedbackView, LabFruitsView, LabUploadView
from portal import views
from portal.login_throttle import throttled_login
from uploads.api import ImageViewSet

router = DefaultRouter()
router.register("people", PersonViewSet, basename="person")
router.register("feedback", FeedbackViewSet, basename="feedback")
router.register("products", ProductViewSet, basename="product")
router.register("images", ImageViewSet, basename="image")

# Every app's ModelAdmins, before the admin's URLs are built (not done at
# start-up: see portal.apps.PortalAdminConfig).
admin.autodiscover()
admin.site.site_header = settings.SITE_NAME
admin.site.site_title = settings.SITE_NAME

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health_view, name="health"),
    path("health/live", views.health_live, name="health-live"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/login/", throttled_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Its start-up script at ?script= instead of inline: the site's policy runs none.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs.html"),
        name="api-docs",
    ),
    # The course's web service: with or without the trailing slash.
    re_path(r"^feedback/?$", LabFeedbackView.as_view(), name="lab-feedback"),
    re_path(r"^fruits/?$", LabFruitsView.as_view(), name="lab-fruits"),
    re_path(r"^upload/?$", LabUploadView.as_view(), name="lab-upload"),
    path("img/", include("uploads.urls")),  # renditions on demand, at signed URLs
    path("", include("catalog.urls")),
]

if settings.SERVE_MEDIA:
    urlpatterns.append(views.media_route(settings.MEDIA_URL))

handler400 = "portal.views.bad_request"
handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
