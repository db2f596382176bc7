import hashlib
import re
import sys

from django.db import migrations

# As core.authentication.stored_key makes it now, copied: a migration keeps
# doing what it did when it was written.
KEY_PREFIX_LENGTH = 8
KEY_SHAPE = re.compile(r"[0-9a-f]{40}")


def stored_key(key):
    return key[:KEY_PREFIX_LENGTH] + hashlib.sha256(key.encode()).hexdigest()[: 40 - KEY_PREFIX_LENGTH]


def keys_to_digests(apps, schema_editor):
    """Store each token's key as its digest, the only form the portal now
    looks a key up by: each key still works, and the table gives none
    away. The row is kept (its user and when it was made); only its key
    column, the primary key, changes."""
    Token = apps.get_model("authtoken", "Token")
    refused = []
    for key in list(Token.objects.values_list("key", flat=True)):
        if KEY_SHAPE.fullmatch(key):
            Token.objects.filter(key=key).update(key=stored_key(key))
        else:
            refused.append(key)
    # A key set by hand, not one DRF makes (40 hex digits): the portal
    # refuses every other shape, so kept it would work no more, and stand
    # in the way of the user's new token.
    if refused:
        gone = Token.objects.filter(key__in=refused)
        users = ", ".join(sorted(str(name) for name in gone.values_list("user__username", flat=True)))
        gone.delete()
        sys.stdout.write(
            f"\n  API tokens deleted, their keys set by hand, not made by DRF, and no longer taken: "
            f"those of {users}; make them new ones."
        )


def delete_tokens(apps, schema_editor):
    """Back, the keys cannot be had again, and the release before looked a
    key up as it was sent: a digest read from the table would be a key
    there. So every token goes, and their users need new ones."""
    Token = apps.get_model("authtoken", "Token")
    deleted, _ = Token.objects.all().delete()
    if deleted:
        sys.stdout.write(f"\n  {deleted} API tokens deleted: their keys are not kept; make new ones.")


class Migration(migrations.Migration):

    dependencies = [
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.RunPython(keys_to_digests, delete_tokens),
    ]
