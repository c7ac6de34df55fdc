from django.urls import include, path
from rest_framework.routers import DefaultRouter
from shop import views

router = DefaultRouter()
router.register("orders", views.OrderViewSet, basename="order")
router.register("jsonapi-orders", views.JsonApiOrderViewSet, basename="jsonapi-order")
router.register("add_drf", views.AddView, basename="add_drf")
router.register("fleet-customers", views.FleetCustomerViewSet, basename="fleet-customer")

urlpatterns = [
    path("", include(router.urls)),
    path("catalogue/", views.CatalogueView.as_view()),
]
