"""The environment's KMS keys outlive a destroy exactly as long as data
they encrypt does (keys::delete, components/kept.rs).

The other half, a destroy that keeps the audit bucket, the documents bucket
and a final snapshot and so keeps every key enabled and aliased, is checked
in test_environment's destroy test and in every tagging sweep.
"""

from __future__ import annotations

from test_environment import ENV, PREFIX
from test_monitoring import monitored

NOTHING_KEPT = ("  skip_final_snapshot                = true\n"
                "  retain_audit_bucket_on_destroy     = false\n"
                "  retain_documents_bucket_on_destroy = false\n")
UNPROTECTED = ("-var", "deletion_protection=false")


def test_keys_are_scheduled_for_deletion_when_nothing_they_encrypt_is_kept(
        tmp_path, terraform_rc, aws_proxy, moto, aws):
    moto.reset()
    tf = monitored(tmp_path, terraform_rc, aws_proxy, NOTHING_KEPT)
    tf.apply(*UNPROTECTED, timeout=900)
    kms = aws("kms")
    keys = {name: kms.describe_key(KeyId=f"alias/idis/{ENV}/{name}")["KeyMetadata"]["Arn"]
            for name in ("platform", "acme", "globex")}

    destroyed = tf.destroy(*UNPROTECTED, timeout=900)
    said = " ".join((destroyed.stdout + destroyed.stderr).split())
    # Nothing of the environment's is left for the keys to decrypt...
    left = [b["Name"] for b in aws("s3").list_buckets()["Buckets"]
            if b["Name"].startswith((f"{PREFIX}-audit-", f"{PREFIX}-documents-"))]
    assert left == [], left
    assert aws("rds").describe_db_snapshots(DBInstanceIdentifier=f"{PREFIX}-db",
                                            SnapshotType="manual")["DBSnapshots"] == []
    # ...so they are scheduled for deletion, never deleted at once, and
    # their aliases go.
    for name, arn in keys.items():
        assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion", name
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(f"alias/idis/{ENV}/")]
    assert aliases == [], aliases
    assert "are pending deletion" in said and "kept the KMS keys" not in said, said[-3000:]
