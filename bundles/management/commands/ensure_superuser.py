"""Create (or reset the password of) a superuser non-interactively, for the demo command."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a superuser, or reset its password, reading the password from a file."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--password-file", required=True, type=Path)
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, password_file: Path, email: str, **options):
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise CommandError(f"Cannot read the password file: {exc}") from exc
        if not password:
            raise CommandError("The password file is empty.")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"email": email, "is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} superuser {username!r}.")
