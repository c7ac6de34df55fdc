from rest_framework import serializers, viewsets

from .models import Book


class BookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Book
        fields = ["id", "title", "author", "year"]

    def validate_year(self, value: int) -> int:
        if value > 2100:
            raise serializers.ValidationError("that is too far in the future")
        return value


class BookViewSet(viewsets.ModelViewSet):
    """An ordinary DRF viewset; ZC_EVENTS_HANDLERS = {'books': ...} serves it over the broker."""

    queryset = Book.objects.order_by("id")
    serializer_class = BookSerializer

    def get_queryset(self):
        author = self.request.query_params.get("author")
        queryset = super().get_queryset()
        return queryset.filter(author=author) if author else queryset
