from django.conf import settings
from django.db import models


class Event(models.Model):
    name = models.CharField(max_length=200, unique=True)


class Seat(models.Model):
    STATUS_CHOICES = [('available', 'available'), ('locked', 'locked'), ('booked', 'booked')]
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name='seats')
    seat_number = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default='available')
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name='locked_seats'
    )

    class Meta:
        unique_together = [('event', 'seat_number')]
