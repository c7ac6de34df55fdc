from books.views import BookViewSet
from django.urls import include, path
from rest_framework.routers import DefaultRouter

router = DefaultRouter()
router.register("books", BookViewSet)

# The same viewset over HTTP (runserver) and over the broker (zc_events_worker).
urlpatterns = [path("", include(router.urls))]
