from django.shortcuts import get_object_or_404
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_json_api import parsers as jsonapi_parsers
from rest_framework_json_api import renderers as jsonapi_renderers
from rest_framework_json_api import views as jsonapi_views
from rest_framework_json_api.pagination import JsonApiPageNumberPagination

import zc_events
from zc_events_django import event_request

from .models import Customer, Order
from .serializers import (
    AddSerializer,
    AnswerSerializer,
    ContactSerializer,
    CustomerResourceSerializer,
    OrderResourceSerializer,
    OrderSerializer,
)


class OrderViewSet(viewsets.ModelViewSet):
    """Every action, an extra detail action and an extra list action."""

    queryset = Order.objects.order_by("id")
    serializer_class = OrderSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        wanted = self.request.query_params.get("status")
        return queryset.filter(status=wanted) if wanted else queryset

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self.get_object()
        order.status = "cancelled"
        order.save()
        return Response(self.get_serializer(order).data)

    @action(detail=False, methods=["get"], url_path="count-by-status")
    def count_by_status(self, request):
        counts: dict[str, int] = {}
        for order in self.get_queryset():
            counts[order.status] = counts.get(order.status, 0) + 1
        return Response(counts)


class ListOnlyViewSet(viewsets.ViewSet):
    """A ViewSet without detail actions: a router makes no detail route for it."""

    def list(self, request):
        return Response(["listed"])


class SearchView(APIView):
    """Reads query parameters."""

    def get(self, request, **kwargs):
        return Response(
            {
                "q": request.query_params.get("q"),
                "tags": request.query_params.getlist("tag"),
                "path": request.path,
                "host": request.get_host(),
                "kwargs": kwargs,
                "user": None if request.user.is_anonymous else request.user.username,
                "claims": event_request(request).headers.get("roles"),
            }
        )


class IsStaff(permissions.BasePermission):
    message = "Only staff may delete contacts."

    def has_permission(self, request, view):
        return request.method != "DELETE" or request.user.is_staff


class SecureView(APIView):
    """Needs a token; validates its body; only staff may DELETE; throttled."""

    permission_classes = [permissions.IsAuthenticated, IsStaff]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "limited"

    def get(self, request):
        return Response({"user": request.user.username})

    def post(self, request):
        serializer = ContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=status.HTTP_201_CREATED)

    def delete(self, request):
        return Response(status=status.HTTP_204_NO_CONTENT)


@zc_events.handler("echo")
@api_view(["GET", "POST"])
def echo(request, pk=None):
    """A function view registered with @zc_events.handler."""
    if request.data == {"fail": "teapot"}:
        raise exceptions.APIException("I'm a teapot")
    return Response({"method": request.method, "data": request.data, "pk": pk})


@api_view(["GET"])
def crash(request):
    return Response({"ratio": 1 / 0})


def plain_customer(request, pk):
    """A plain Django function view (no DRF)."""
    from django.http import JsonResponse

    customer = get_object_or_404(Customer, pk=pk)
    return JsonResponse({"name": customer.name})


class JsonApiOrderViewSet(jsonapi_views.ModelViewSet):
    queryset = Order.objects.order_by("id")
    serializer_class = OrderResourceSerializer
    pagination_class = JsonApiPageNumberPagination
    parser_classes = [jsonapi_parsers.JSONParser]
    renderer_classes = [jsonapi_renderers.JSONRenderer]


class OrderRelationshipView(jsonapi_views.RelationshipView):
    queryset = Order.objects.all()
    parser_classes = [jsonapi_parsers.JSONParser]
    renderer_classes = [jsonapi_renderers.JSONRenderer]
    resource_name = "orders"


# -- the old fleet's DRF stack: djangorestframework-jsonapi's parser, renderer and exception
# handler (EXCEPTION_HANDLER in settings), shared by the services for application/json ---------
class FleetJSONParser(jsonapi_parsers.JSONParser):
    media_type = "application/json"


class FleetJSONRenderer(jsonapi_renderers.JSONRenderer):
    media_type = "application/json"
    format = "json"


class FleetView:
    parser_classes = [FleetJSONParser]
    renderer_classes = [FleetJSONRenderer]


class Answer:
    def __init__(self, answer: int, method: str, pk: object = None) -> None:
        self.pk = -1 if pk is None else pk
        self.answer = answer
        self.method = method


class AddView(FleetView, viewsets.GenericViewSet):
    """The old library's example viewset: adds x and y; no partial_update."""

    resource_name = "AddView"
    serializer_class = AddSerializer

    def _add(self, request, pk=None):
        question = self.get_serializer(data=request.data)
        question.is_valid(raise_exception=True)
        answer = question.validated_data["x"] + question.validated_data["y"]
        return Response(AnswerSerializer(Answer(answer, request.method, pk)).data)

    def list(self, request):
        return self._add(request)

    def create(self, request):
        return self._add(request)

    def retrieve(self, request, pk=None):
        return self._add(request, pk)

    def update(self, request, pk=None):
        return self._add(request, pk)

    def destroy(self, request, pk=None):
        return self._add(request, pk)


class FleetCustomerViewSet(FleetView, jsonapi_views.ModelViewSet):
    queryset = Customer.objects.order_by("id")
    serializer_class = CustomerResourceSerializer
    resource_name = "customers"


CATALOGUE = {"tea": {"sku": "tea", "price": 3}, "cake": {"sku": "cake", "price": 5}}


class NoAdditions(permissions.BasePermission):
    message = "Nobody may add to the catalogue."

    def has_permission(self, request, view):
        return request.method != "POST"


class CatalogueView(FleetView, APIView):
    """Looks an item up by the ``sku`` query parameter; nobody may add to it; no PUT."""

    resource_name = "catalogue"
    authentication_classes = []
    permission_classes = [NoAdditions]

    def get(self, request, **kwargs):
        sku = request.query_params.get("sku")
        if not sku:
            raise exceptions.ValidationError("The 'sku' query parameter is required.")
        if sku not in CATALOGUE:
            raise exceptions.NotFound(f"No item with sku {sku!r}.")
        return Response(CATALOGUE[sku])

    def post(self, request, **kwargs):
        return Response(status=status.HTTP_201_CREATED)
