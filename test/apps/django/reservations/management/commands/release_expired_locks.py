"""The legacy way of releasing expired locks, one save() per seat (what seatctl replaces)."""
from django.core.management.base import BaseCommand
from django.utils import timezone

from reservations.models import Seat


class Command(BaseCommand):
    help = 'Release seat locks whose locked_until has passed.'

    def handle(self, *args, **options):
        released = 0
        for seat in Seat.objects.filter(status='locked', locked_until__lte=timezone.now()):
            seat.status = 'available'
            seat.locked_until = None
            seat.locked_by = None
            seat.save()
            released += 1
        self.stdout.write(f'released {released}')
