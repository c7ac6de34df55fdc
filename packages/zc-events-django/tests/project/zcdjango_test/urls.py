from django.urls import include, path
from rest_framework.routers import DefaultRouter
from shop import views

router = DefaultRouter()
router.register("orders", views.OrderViewSet, basename="order")
router.register("jsonapi-orders", views.JsonApiOrderViewSet, basename="jsonapi-order")

urlpatterns = [path("", include(router.urls))]
