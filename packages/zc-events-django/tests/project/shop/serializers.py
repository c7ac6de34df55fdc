from rest_framework import serializers
from rest_framework_json_api import serializers as jsonapi

from .models import Customer, Order


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "customer", "item", "quantity", "status", "delivery_note"]

    def validate_quantity(self, value: int) -> int:
        if value > 100:
            raise serializers.ValidationError("at most 100 per order")
        return value


class ContactSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(max_length=20)


class CustomerResourceSerializer(jsonapi.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["name"]


class OrderResourceSerializer(jsonapi.ModelSerializer):
    included_serializers = {"customer": CustomerResourceSerializer}
    customer = jsonapi.ResourceRelatedField(queryset=Customer.objects, required=False)

    class Meta:
        model = Order
        fields = ["item", "quantity", "status", "delivery_note", "customer"]

    def validate_quantity(self, value: int) -> int:
        if value > 100:
            raise serializers.ValidationError("at most 100 per order")
        return value


class AddSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()


class AnswerSerializer(serializers.Serializer):
    answer = serializers.IntegerField()
    method = serializers.CharField()
