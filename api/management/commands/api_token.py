"""Create, revoke and list API tokens for /graphql/.

manage.py api_token create --user alice --name "nightly report"   # prints the key once
manage.py api_token list [--user alice]
manage.py api_token revoke <id or prefix>
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from api.services import ApiTokenError, api_token_create, api_token_revoke, api_tokens_list


class Command(BaseCommand):
    help = "Create, revoke or list per-user API tokens (Authorization: Bearer <key>)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token; its key is shown only now.")
        create.add_argument("--user", required=True, help="Username the token acts as")
        create.add_argument("--name", required=True, help="What the token is for")
        create.add_argument("--quiet", action="store_true", help="Print only the key (for scripts)")
        revoke = sub.add_parser("revoke", help="Revoke a token by id or prefix.")
        revoke.add_argument("token", help="Token id or key prefix (see 'list')")
        listing = sub.add_parser("list", help="List tokens (never their keys).")
        listing.add_argument("--user", help="Only this user's tokens")

    def handle(self, *args, action: str, **options):
        try:
            if action == "create":
                self._create(options["user"], options["name"], quiet=options["quiet"])
            elif action == "revoke":
                row = api_token_revoke(token=options["token"])
                self.stdout.write(f"Revoked token {row.pk} ({row.prefix}…) of {row.user}.")
            else:
                self._list(options.get("user"))
        except ApiTokenError as exc:
            raise CommandError(exc.message) from exc

    def _create(self, username: str, name: str, *, quiet: bool) -> None:
        row, key = api_token_create(username=username, name=name)
        if quiet:
            self.stdout.write(key)
            return
        self.stdout.write(f"Created token {row.pk} {name!r} for {username}.")
        self.stdout.write("Key (shown only now; store it safely):")
        self.stdout.write(key)

    def _list(self, username: str | None) -> None:
        rows = api_tokens_list(username=username)
        if not rows:
            self.stdout.write("No tokens.")
            return
        self.stdout.write(f"{'id':>4}  {'prefix':<12} {'user':<16} {'name':<24} last used / state")
        for row in rows:
            state = (
                f"revoked {row.revoked_at:%Y-%m-%d %H:%M}"
                if row.revoked_at
                else (
                    f"used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
                )
            )
            self.stdout.write(
                f"{row.pk:>4}  {row.prefix:<12} {row.user.get_username():<16} "
                f"{row.name[:24]:<24} {state}"
            )
