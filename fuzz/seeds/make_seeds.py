"""Writes the seed corpus (a handful of well-formed inputs) for the fuzz
targets. Run from fuzz/: python3 seeds/make_seeds.py

Files named regression-* are inputs that once crashed a target, kept so
every run replays them; they are not written here."""

import json
import struct
from pathlib import Path


def mp(v) -> bytes:
    """Just enough msgpack for the seeds."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        return bytes([v]) if 0 <= v < 128 else b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


UNKNOWN = object()

ENVIRONMENT = {
    "name": "production",
    "region": "us-east-1",
    "tags": {"team": "platform", "cost-centre": "R+D"},
    "network": {"vpc_cidr": "10.0.0.0/16", "availability_zones": ["us-east-1a", "us-east-1b", "us-east-1c"]},
    "keys": {"tenants": ["acme", "globex"], "deletion_window_days": 30},
    "cluster": {"kubernetes_version": "1.31", "node_instance_types": ["m6i.xlarge"], "node_min_size": 3, "node_max_size": 10},
    "database": {"engine_version": "16", "instance_class": "db.r6g.xlarge", "multi_az": True, "backup_retention_days": 30},
    "cache": {"engine_version": "7", "node_count": 2, "multi_az": True},
    "audit_storage": {"worm": True, "versioning": True, "retention_mode": "COMPLIANCE", "retention_days": 365},
    "edge": {"waf": True, "rate_limit": 2000, "origin_domain": "app.example.com"},
    "timeouts": {"create": "1h30m"},
}

root = Path(__file__).parent
env_mp = mp(ENVIRONMENT)
with_unknown = env_mp.replace(mp("10.0.0.0/16"), b"\xd4\x00\x00")
env_json = json.dumps(ENVIRONMENT).encode()

seeds = {
    "cty_decode/environment.msgpack": b"\x00" + env_mp,
    "cty_decode/environment-unknown.msgpack": b"\x00" + with_unknown,
    "cty_decode/environment.json": b"\x01" + env_json,
    "cty_decode/provider.msgpack": b"\x02" + mp({"region": "us-east-1", "max_retries": 5, "endpoints": {"s3": "http://127.0.0.1:5000"}, "default_tags": {"tags": {"a": "b"}}}),
    "cty_decode/dynamic.msgpack": b"\x06" + mp([b'["list","number"]', [1, 2.5, 3]]),
    "cty_decode/dynamic.json": b"\x07" + b'{"value": {"a": [1, "x"]}, "type": ["object", {"a": ["tuple", ["number", "string"]]}]}',
    "cty_decode/numbers.msgpack": b"\x0a" + mp({"a": 1, "b": -5, "c": "123456789012345678901234567890"}),
    "validate_config/environment.msgpack": env_mp,
    "validate_config/environment-unknown.msgpack": with_unknown,
    "validate_config/environment.json": env_json,
    "validate_config/bad.json": json.dumps({**ENVIRONMENT, "name": "Prod_1", "cluster": {"node_min_size": 5, "node_max_size": 3}}).encode(),
}
for name, data in seeds.items():
    (root / name).write_bytes(data)
