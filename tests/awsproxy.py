"""A small HTTP proxy of our own between the provider and moto.

It forwards every AWS call to moto unchanged, except where a rule steps in:

- emulator gaps are filled the way AWS behaves, where moto 5.2.5 does not:
  an ElastiCache replication group deleted through the proxy stops being
  described (moto keeps it in "deleting" forever); DeleteCacheSubnetGroup
  (absent from moto) succeeds; RDS instances report the Performance
  Insights setting they were given (moto drops it); a create repeated
  with the same EC2 `ClientToken` or Secrets Manager `ClientRequestToken`
  gets the first answer again (moto makes a second object); WAF's
  duplicate error carries AWS's code `WAFDuplicateItemException` (moto
  says `WafV2DuplicateItem`); KMS ListAliases is
  paginated (moto returns every alias at once; AWS returns `Limit` aliases,
  50 by default, at most 100, and a `NextMarker`);
- what moto 5.2.5 lacks is answered by the proxy itself, as AWS answers it
  (each rule cites its AWS page; tables are constructor knobs): EKS
  DescribeClusterVersions (`eks_versions`), UpdateClusterVersion (one
  minor version at a time, node groups at the cluster's version first),
  UpdateNodegroupVersion (never newer than the cluster), DescribeUpdate,
  ListUpdates, the managed add-ons (Create/Describe/List/Update/
  DeleteAddon, DescribeAddonVersions, `eks_addon_versions`), updates
  InProgress for `update_reads` status reads and add-ons CREATING or
  DELETING for `addon_reads`; moto's EKS answers then report the new
  versions (and the default version, platform version and AMI release
  AWS fills in at create); RDS DescribeDBEngineVersions
  (`db_engine_versions`) and ModifyDBInstance's engine upgrade rules
  (AllowMajorVersionUpgrade, parameter group family, read replicas
  upgraded with the primary in a major upgrade and before it in a minor
  one, DBUpgradeDependencyFailure); ElastiCache DescribeCacheEngineVersions
  (`cache_engine_versions`) and cache parameter groups (valkey7/valkey8
  families among them); RDS Performance Insights' key and retention
  (moto drops them at create); CloudWatch Logs AssociateKmsKey and
  DisassociateKmsKey (what DescribeLogGroups then reports as the group's
  `kmsKeyId`) and PutRetentionPolicy's refusal of a period CloudWatch Logs
  does not offer; ElastiCache ModifyReplicationGroup's
  LogDeliveryConfigurations, reported by DescribeReplicationGroups (moto
  takes and drops them); WAFv2 ListResourcesForWebACL from moto's own
  associations; CloudTrail CreateTrail/UpdateTrail refuse a bucket policy
  or KMS key policy that does not let CloudTrail deliver that trail
  (InsufficientS3BucketPolicyException,
  InsufficientEncryptionPolicyException; moto only checks the bucket
  exists); `forget()` drops what the proxy keeps of AWS objects
  (conftest calls it on `moto.reset()`);
- the recovery drills, as AWS plays them where moto does not (see
  `_drill_request` and `_drill_answer`): RestoreDBInstanceToPointInTime
  gives a new instance that is single-AZ and unprotected unless asked
  (moto copies the source's MultiAZ and DeletionProtection) and that is
  `creating` for its first `creating_reads["rds"]` reads; RebootDBInstance
  with ForceFailover is refused for an instance that is not Multi-AZ and
  reports `rebooting` for `failover_reads` reads (moto ignores both);
  ElastiCache TestFailover (absent from moto) is answered, refused
  without automatic failover, and the group and its node group report
  `modifying` for `failover_reads` reads;
- EC2 refuses to delete what something still depends on, as AWS does and
  moto does not (DependencyViolation): a subnet that still holds network
  interfaces or load balancers, a security group that network interfaces
  or load balancers use or other groups' rules reference, a VPC that still
  holds security groups besides its default one;
- protocols moto does not speak are translated: CloudWatch answers the
  current AWS SDKs in Smithy RPC v2 CBOR (`POST /service/<service>/
  operation/<Operation>`, CBOR bodies, `smithy-protocol: rpc-v2-cbor`),
  which moto 5.2.5 lacks; the proxy hands moto the same call in the AWS
  JSON 1.0 protocol CloudWatch also speaks, and answers in CBOR, typed by
  the service model botocore ships (see `RpcV2Cbor`);
- fault rules (for the robustness tests) add latency, throttling and 5xx
  answers in each protocol's own format, drop connections without an
  answer (before forwarding, or after moto has done the work), and report
  a newly created component as still being created for its first N status
  reads; `counters` says how many of each they injected;
- a delay table (for the benchmarks) holds chosen calls for a while before
  forwarding them, e.g. `{"rds:CreateDBInstance": 8.0}`: the call returns
  once the "provisioning" time has passed, so what depends on it waits;
- with `record=True` every call is kept in `journal` with when it started
  and finished, to see which calls ran concurrently.

Tests still check AWS state by asking moto directly with boto3, never
through this proxy.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import fnmatch
import http.client
import json
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

import boto3
import botocore.exceptions
import botocore.session
import cbor2

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"}
SERVICE_IN_AUTH = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")

ELASTICACHE_NS = "http://elasticache.amazonaws.com/doc/2015-02-02/"


# At most this many calls are forwarded to moto at once (see AwsProxy).
UPSTREAM_SLOTS = 64


class UpstreamFailed(RuntimeError):
    """moto closed or reset a forwarded call: the emulator's fault."""


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a client opening more
    # connections at once (the provider reads seven components
    # concurrently) has the rest dropped until a retransmit, which no AWS
    # endpoint does.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that went away (killed mid-call) is not the proxy's error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


@dataclass
class Call:
    service: str
    action: str
    params: dict[str, str]
    region: str = "us-east-1"


@dataclass
class Counters:
    calls: int = 0
    by_service: dict[str, int] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)
    injected_latency: int = 0
    injected_errors: int = 0
    completed_deletions: int = 0
    dependency_violations: int = 0
    # "service:Operation" -> calls (REST operations named as in the API).
    by_operation: dict[str, int] = field(default_factory=dict)
    injected_delays: int = 0
    # Faults beyond `injected_errors` (5xx answers).
    injected_throttles: int = 0
    injected_drops: int = 0
    injected_drops_after_forwarding: int = 0
    injected_errors_after_forwarding: int = 0
    injected_hangs_after_forwarding: int = 0
    injected_creating: int = 0
    # Calls to a Region `down_regions` holds, answered 503.
    refused_down: int = 0
    # Creates repeated with a client token and answered as the first one.
    repeated_tokens: int = 0
    # "service:Operation" -> faults injected into that operation's calls.
    faults_by_operation: dict[str, int] = field(default_factory=dict)
    # Calls the proxy answered itself, as AWS would, where moto lacks the
    # operation or answers unlike AWS (the tables and refusals of
    # `_emulate`).
    emulated: int = 0

    @property
    def injected_faults(self) -> int:
        """Calls that failed because of the proxy (throttled, 5xx, dropped)."""
        return (
            self.injected_throttles
            + self.injected_errors
            + self.injected_drops
            + self.injected_drops_after_forwarding
            + self.injected_errors_after_forwarding
            + self.injected_hangs_after_forwarding
        )

    def faults(self) -> dict[str, int]:
        """What the proxy injected, by kind, for a test to print."""
        return {
            "throttled": self.injected_throttles,
            "5xx": self.injected_errors,
            "dropped before forwarding": self.injected_drops,
            "dropped after forwarding": self.injected_drops_after_forwarding,
            "5xx after forwarding": self.injected_errors_after_forwarding,
            "no answer in time after forwarding": self.injected_hangs_after_forwarding,
            "still-creating reads": self.injected_creating,
            "delayed calls": self.injected_delays,
        }


@dataclass
class Exchange:
    """One call as the proxy saw it (time.monotonic() seconds)."""

    service: str
    operation: str
    started: float
    finished: float
    status: int


# REST operations the delay table and the journal name (method, service,
# path pattern); query and JSON protocols carry their operation name.
REST_OPERATIONS = [
    ("PUT", "s3", re.compile(r"^/[^/?]+/?$"), "CreateBucket"),
    ("HEAD", "s3", re.compile(r"^/[^/?]+/?$"), "HeadBucket"),
    ("DELETE", "s3", re.compile(r"^/[^/?]+/?$"), "DeleteBucket"),
    ("POST", "eks", re.compile(r"^/clusters/?$"), "CreateCluster"),
    ("GET", "eks", re.compile(r"^/clusters/?$"), "ListClusters"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/node-groups/?$"), "CreateNodegroup"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/?$"), "DescribeCluster"),
    ("DELETE", "eks", re.compile(r"^/clusters/[^/]+/?$"), "DeleteCluster"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+/?$"), "DescribeNodegroup"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/node-groups/?$"), "ListNodegroups"),
    ("DELETE", "eks", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+/?$"), "DeleteNodegroup"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+/update-config/?$"), "UpdateNodegroupConfig"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/node-groups/[^/]+/update-version/?$"), "UpdateNodegroupVersion"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/update-config/?$"), "UpdateClusterConfig"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/encryption-config/associate/?$"), "AssociateEncryptionConfig"),
    ("GET", "eks", re.compile(r"^/cluster-versions/?$"), "DescribeClusterVersions"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/updates/?$"), "UpdateClusterVersion"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/updates/?$"), "ListUpdates"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/updates/[^/]+/?$"), "DescribeUpdate"),
    ("GET", "eks", re.compile(r"^/addons/supported-versions/?$"), "DescribeAddonVersions"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/addons/?$"), "CreateAddon"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/addons/?$"), "ListAddons"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/addons/[^/]+/?$"), "DescribeAddon"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/addons/[^/]+/update/?$"), "UpdateAddon"),
    ("DELETE", "eks", re.compile(r"^/clusters/[^/]+/addons/[^/]+/?$"), "DeleteAddon"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/access-entries/?$"), "CreateAccessEntry"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/access-entries/?$"), "ListAccessEntries"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/access-entries/[^/]+/?$"), "DescribeAccessEntry"),
    ("DELETE", "eks", re.compile(r"^/clusters/[^/]+/access-entries/[^/]+/?$"), "DeleteAccessEntry"),
    ("POST", "eks", re.compile(r"^/clusters/[^/]+/access-entries/[^/]+/access-policies/?$"), "AssociateAccessPolicy"),
    ("GET", "eks", re.compile(r"^/clusters/[^/]+/access-entries/[^/]+/access-policies/?$"),
     "ListAssociatedAccessPolicies"),
    ("DELETE", "eks", re.compile(r"^/clusters/[^/]+/access-entries/[^/]+/access-policies/[^/]+/?$"),
     "DisassociateAccessPolicy"),
    ("POST", "cloudfront", re.compile(r"^/[^/]+/distribution/?$"), "CreateDistribution"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/distribution/?$"), "ListDistributions"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/tagging/?$"), "ListTagsForResource"),
    ("POST", "cloudfront", re.compile(r"^/[^/]+/tagging/?$"), "TagResource"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/distribution/[^/]+/?$"), "GetDistribution"),
    ("DELETE", "cloudfront", re.compile(r"^/[^/]+/distribution/[^/]+/?$"), "DeleteDistribution"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/distribution/[^/]+/config/?$"), "GetDistributionConfig"),
    ("PUT", "cloudfront", re.compile(r"^/[^/]+/distribution/[^/]+/config/?$"), "UpdateDistribution"),
    ("POST", "cloudfront", re.compile(r"^/[^/]+/origin-access-control/?$"), "CreateOriginAccessControl"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/origin-access-control/?$"), "ListOriginAccessControls"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/origin-access-control/[^/]+/?$"), "GetOriginAccessControl"),
    ("DELETE", "cloudfront", re.compile(r"^/[^/]+/origin-access-control/[^/]+/?$"), "DeleteOriginAccessControl"),
]


S3_SUBRESOURCES = {
    "object-lock": "ObjectLockConfiguration",
    "publicAccessBlock": "PublicAccessBlock",
    "uploads": "MultipartUploads",
    "versions": "ObjectVersions",
}


def operation_name(call: Call, method: str, path: str) -> str:
    """The API operation of a call: its Action or target, else the REST
    operation its method and path stand for (else "METHOD /path")."""
    if not call.action.startswith("/"):
        return call.action
    route, _, query = path.partition("?")
    if call.service == "s3" and query:
        # GET /bucket?versioning -> GetBucketVersioning, and so on.
        sub = query.split("&")[0].split("=")[0]
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method.title())
        return verb + S3_SUBRESOURCES.get(sub, f"Bucket{sub[:1].upper()}{sub[1:]}")
    for verb, service, pattern, name in REST_OPERATIONS:
        if method == verb and call.service == service and pattern.match(route):
            return name
    return f"{method} {route}"


def _query_error(code: str, message: str, status: int = 404, ns: str = ELASTICACHE_NS) -> tuple[int, dict, bytes]:
    body = (
        f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return status, {"Content-Type": "text/xml"}, body


class _Drop(Exception):
    """Close the client's connection without any answer."""


# STS calls made without credentials, so without a signature naming the
# service.
UNSIGNED_STS_ACTIONS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}

# EKS operations the proxy answers itself whose `clientRequestToken` it honours.
EKS_TOKEN_OPERATIONS = {"UpdateClusterVersion", "UpdateNodegroupVersion", "CreateAddon", "UpdateAddon"}

# Services by protocol (the signing name in the Authorization header).
# Services of the awsJson1_0/1_1 protocol (their service models' "protocol"):
# their errors are JSON with `__type`, never XML.
JSON_SERVICES = {"kms", "wafv2", "shield", "secretsmanager", "tagging", "dynamodb", "logs", "cloudtrail"}
REST_JSON_SERVICES = {"eks"}
REST_XML_SERVICES = {"s3", "cloudfront"}


class RpcV2Cbor:
    """The Smithy RPC v2 CBOR protocol, as AWS serves it, over moto's JSON.

    The protocol (Smithy "RPC v2 CBOR protocol", smithy.io, Smithy 2.0
    spec, "Protocols"): every call is `POST /service/{ServiceName}/operation/
    {OperationName}` with the header `smithy-protocol: rpc-v2-cbor` and the
    input as a CBOR map; the answer carries the same header and the output
    as a CBOR map, timestamps as tag 1 (epoch seconds), blobs as byte
    strings; an error is a CBOR map whose `__type` names it. CloudWatch
    serves it beside AWS JSON 1.0 and AWS Query, and the SDKs use the most
    efficient one their language has (CloudWatch User Guide, "FAQs on
    CloudWatch supported protocols"); as an `awsQueryCompatible` service
    its errors also carry the query error code in `x-amzn-query-error`
    (Smithy, "awsQueryCompatible trait").

    moto 5.2.5 speaks JSON 1.0 and query for CloudWatch, so the call goes to
    moto as the same operation in JSON 1.0 (`X-Amz-Target:
    <ServiceName>.<Operation>`), and moto's JSON answer comes back as CBOR,
    each value typed by the operation's output shape in the service model
    botocore ships (a JSON number is a CBOR double where the model says
    double, a tag-1 timestamp where it says timestamp)."""

    PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/?]+)/?$")
    # Signing name -> botocore's service name.
    MODELS = {"monitoring": "cloudwatch"}
    _models: dict = {}
    _lock = threading.Lock()

    @classmethod
    def operation(cls, headers: dict, path: str) -> str | None:
        """The operation of a call in this protocol, else None."""
        match = cls.PATH.match(path.split("?", 1)[0])
        protocol = headers.get("smithy-protocol") or headers.get("Smithy-Protocol")
        if match and (protocol == "rpc-v2-cbor" or protocol is None):
            return match.group("operation")
        return None

    @classmethod
    def model(cls, service: str):
        name = cls.MODELS.get(service)
        if name is None:
            return None
        with cls._lock:
            if name not in cls._models:
                cls._models[name] = botocore.session.get_session().get_service_model(name)
            return cls._models[name]

    @staticmethod
    def _jsonable(value):
        """A decoded CBOR value as JSON 1.0 carries it."""
        if isinstance(value, dict):
            return {k: RpcV2Cbor._jsonable(v) for k, v in value.items()}
        if isinstance(value, list):
            return [RpcV2Cbor._jsonable(v) for v in value]
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(value).decode()
        if isinstance(value, cbor2.CBORTag) and value.tag == 1:
            return value.value
        return value

    @staticmethod
    def _typed(value, shape):
        """A JSON value as CBOR carries it, by its model shape."""
        if shape is None or value is None:
            return value
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            return {k: RpcV2Cbor._typed(v, shape.members.get(k)) for k, v in value.items()}
        if kind == "list" and isinstance(value, list):
            return [RpcV2Cbor._typed(v, shape.member) for v in value]
        if kind == "map" and isinstance(value, dict):
            return {k: RpcV2Cbor._typed(v, shape.value) for k, v in value.items()}
        if kind == "timestamp":
            if isinstance(value, (int, float)):
                return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
            if isinstance(value, str):
                try:
                    return datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)
                except ValueError:
                    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
                    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
        if kind in ("double", "float") and isinstance(value, (int, float, str)):
            return float(value)
        if kind in ("integer", "long") and isinstance(value, (int, float, str)):
            return int(value)
        if kind == "blob" and isinstance(value, str):
            return base64.b64decode(value)
        return value

    @classmethod
    def request(cls, service: str, operation: str, path: str, headers: dict, body: bytes) -> tuple[str, dict, bytes]:
        """The call as moto takes it: path, headers and JSON 1.0 body."""
        match = cls.PATH.match(path.split("?", 1)[0])
        decoded = cbor2.loads(body) if body else {}
        forwarded = {k: v for k, v in headers.items()
                     if k.lower() not in ("smithy-protocol", "content-type", "accept", "content-length")}
        forwarded["Content-Type"] = "application/x-amz-json-1.0"
        forwarded["X-Amz-Target"] = f"{match.group('service')}.{operation}"
        payload = json.dumps(cls._jsonable(decoded or {})).encode()
        forwarded["Content-Length"] = str(len(payload))
        return "/", forwarded, payload

    @classmethod
    def answer(cls, service: str, operation: str, status: int, headers: dict, payload: bytes) -> tuple[dict, bytes]:
        """moto's JSON answer as a CBOR one."""
        try:
            decoded = json.loads(payload) if payload.strip() else {}
        except ValueError:
            decoded = {"__type": "InternalFailure", "message": payload.decode(errors="replace")[:500]}
        reply = {k: v for k, v in headers.items()
                 if k.lower() not in ("content-type", "content-length", "x-amz-crc32")}
        if status >= 300:
            code = str(decoded.get("__type") or decoded.get("code") or "InternalFailure")
            body = {"__type": code.rsplit("#", 1)[-1],
                    "message": decoded.get("message") or decoded.get("Message") or ""}
        else:
            model = cls.model(service)
            shape = model.operation_model(operation).output_shape if model else None
            body = cls._typed(decoded, shape) if shape is not None else decoded
        encoded = cbor2.dumps(body, datetime_as_timestamp=True, timezone=datetime.timezone.utc)
        reply.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                      "Content-Length": str(len(encoded))})
        return reply, encoded

    @staticmethod
    def error(code: str, message: str, status: int, query_type: str = "Sender") -> tuple[int, dict, bytes]:
        """An error answer of the protocol, with the query code AWS names
        in `x-amzn-query-error` for awsQueryCompatible services."""
        body = cbor2.dumps({"__type": code, "message": message})
        return status, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                        "x-amzn-query-error": f"{code};{query_type}",
                        "x-amzn-RequestId": str(uuid.uuid4())}, body


# Services that answer the SDK in Smithy RPC v2 CBOR (signing names).
CBOR_SERVICES = {"monitoring"}


def fault_answer(service: str, kind: str, retry_after_5xx: int = 503) -> tuple[int, dict, bytes]:
    """A throttling ("throttle") or server error ("5xx") answer in the
    format the service's protocol uses on AWS, with the error codes AWS
    sends: EC2 `RequestLimitExceeded` / `Unavailable`; other query services
    (RDS, ElastiCache, IAM, STS, ELBv2) `Throttling` / `ServiceUnavailable`;
    JSON services `ThrottlingException` / `ServiceUnavailableException` in
    `__type`; EKS (REST-JSON) the same in `x-amzn-ErrorType`; S3 `SlowDown`
    / `ServiceUnavailable`; CloudFront `Throttling` / `ServiceUnavailable`."""
    request_id = str(uuid.uuid4())
    throttle = kind == "throttle"
    if service in CBOR_SERVICES:
        # CloudWatch: the query codes `Throttling` / `ServiceUnavailable`.
        if throttle:
            return RpcV2Cbor.error("Throttling", "Rate exceeded", 400)
        return RpcV2Cbor.error("ServiceUnavailable", "Service unavailable", 503, "Receiver")
    if service == "ec2":
        code = "RequestLimitExceeded" if throttle else "Unavailable"
        message = "Request limit exceeded." if throttle else "The service is unavailable. Please try again shortly."
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return (503, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode())
    if service in JSON_SERVICES or service in REST_JSON_SERVICES:
        code = "ThrottlingException" if throttle else "ServiceUnavailableException"
        status = 400 if throttle and service in JSON_SERVICES else (429 if throttle else 503)
        body = json.dumps({"__type": code, "message": "Rate exceeded" if throttle else "Service unavailable"})
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}
        if service in REST_JSON_SERVICES:
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": request_id}
        return status, headers, body.encode()
    if service == "s3":
        code, message = ("SlowDown", "Please reduce your request rate.") if throttle else ("ServiceUnavailable", "Service is unable to handle request.")
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        return 503, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body.encode()
    # Query services (RDS, ElastiCache, IAM, STS, ELBv2) and CloudFront.
    code, status = ("Throttling", 400) if throttle else ("ServiceUnavailable", 503)
    message = "Rate exceeded" if throttle else "Service unavailable"
    body = (
        f"<ErrorResponse><Error><Type>{'Sender' if throttle else 'Receiver'}</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, body.encode()


# "Still creating": the kinds of component the proxy can report as being
# created, the status AWS reports meanwhile, and where the status is.
CREATING_KINDS = ("eks-cluster", "eks-nodegroup", "rds", "elasticache", "cloudfront", "nat")


def _json_status(payload: bytes, key: str, status: str) -> bytes:
    try:
        answer = json.loads(payload)
    except ValueError:
        return payload
    if isinstance(answer.get(key), dict) and "status" in answer[key]:
        answer[key]["status"] = status
        return json.dumps(answer).encode()
    return payload


def _xml_items(text: str, item: str, ident: str) -> list[tuple[int, int, str]]:
    """(start, end, identifier) of each <item>...</item> block."""
    found = []
    for match in re.finditer(rf"<{item}>(.*?)</{item}>", text, re.S):
        name = re.search(rf"<{ident}>([^<]+)</{ident}>", match.group(1))
        if name:
            found.append((match.start(), match.end(), name.group(1)))
    return found


def _page_of_aliases(request: bytes, payload: bytes) -> bytes:
    """One page of a KMS ListAliases answer, as AWS pages it. The marker is
    the position of the page in moto's (stable) list."""
    try:
        asked = json.loads(request or b"{}")
        answer = json.loads(payload)
    except ValueError:
        return payload
    aliases = answer.get("Aliases", [])
    limit = max(1, min(int(asked.get("Limit") or 50), 100))
    start = int(asked.get("Marker") or 0)
    page = aliases[start : start + limit]
    more = start + limit < len(aliases)
    answer = {"Aliases": page, "Truncated": more}
    if more:
        answer["NextMarker"] = str(start + limit)
    return json.dumps(answer).encode()


# -- what AWS offers: versions of EKS, its add-ons, RDS and ElastiCache ---------------

# The Kubernetes versions EKS offers, as DescribeClusterVersions lists them:
# dates from the release calendar of "Understand the Kubernetes version
# lifecycle on EKS" (EKS User Guide,
# https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html),
# platform and patch versions from "View Amazon EKS platform versions for
# each Kubernetes version" (.../userguide/platform-versions.html), both as of
# mid-October 2025, when 1.29 and 1.30 were in extended support and 1.31 to
# 1.34 in standard support. Assumptions: which version is the default (EKS
# does not publish it; 1.33 here) and 1.29's platform version (no longer on
# that page).
DEFAULT_EKS_VERSIONS: list[dict] = [
    {"clusterVersion": "1.34", "releaseDate": "2025-10-02", "endOfStandardSupportDate": "2026-12-02",
     "endOfExtendedSupportDate": "2027-12-02", "versionStatus": "STANDARD_SUPPORT",
     "defaultPlatformVersion": "eks.5", "kubernetesPatchVersion": "1.34.1"},
    {"clusterVersion": "1.33", "releaseDate": "2025-05-29", "endOfStandardSupportDate": "2026-07-29",
     "endOfExtendedSupportDate": "2027-07-29", "versionStatus": "STANDARD_SUPPORT",
     "defaultPlatformVersion": "eks.18", "kubernetesPatchVersion": "1.33.5", "defaultVersion": True},
    {"clusterVersion": "1.32", "releaseDate": "2025-01-23", "endOfStandardSupportDate": "2026-03-23",
     "endOfExtendedSupportDate": "2027-03-23", "versionStatus": "STANDARD_SUPPORT",
     "defaultPlatformVersion": "eks.25", "kubernetesPatchVersion": "1.32.9"},
    {"clusterVersion": "1.31", "releaseDate": "2024-09-26", "endOfStandardSupportDate": "2025-11-26",
     "endOfExtendedSupportDate": "2026-11-26", "versionStatus": "STANDARD_SUPPORT",
     "defaultPlatformVersion": "eks.41", "kubernetesPatchVersion": "1.31.13"},
    {"clusterVersion": "1.30", "releaseDate": "2024-05-23", "endOfStandardSupportDate": "2025-07-23",
     "endOfExtendedSupportDate": "2026-07-23", "versionStatus": "EXTENDED_SUPPORT",
     "defaultPlatformVersion": "eks.49", "kubernetesPatchVersion": "1.30.14"},
    {"clusterVersion": "1.29", "releaseDate": "2024-01-23", "endOfStandardSupportDate": "2025-03-23",
     "endOfExtendedSupportDate": "2026-03-23", "versionStatus": "EXTENDED_SUPPORT",
     "defaultPlatformVersion": "eks.57", "kubernetesPatchVersion": "1.29.15"},
]

# The EKS optimized AMI release of a managed node group: "<Kubernetes patch
# version>-<release date>" ("Amazon EKS optimized Amazon Linux AMI
# versions", EKS User Guide). Which release is the latest is an assumption:
# one per Kubernetes version, dated the day the table above describes. A row
# of `eks_versions` may name its own in `nodeReleaseVersion`.
EKS_AMI_RELEASE_DATE = "20251015"

# The managed add-ons EKS offers and, per add-on version, the Kubernetes
# versions it supports and those it is the default for (DescribeAddonVersions:
# one default per Kubernetes version). Versions from the EKS User Guide's
# tables ("Manage kube-proxy in Amazon EKS clusters", "Manage CoreDNS for DNS
# in Amazon EKS clusters", "Assign IPs to Pods with the Amazon VPC CNI");
# kube-proxy follows its Kubernetes minor version, CoreDNS a range, the VPC
# CNI a wide range. Assumptions: the builds for 1.33 and 1.34 and the older
# non-default builds, which those tables (latest build per version) omit.
DEFAULT_EKS_ADDON_VERSIONS: dict[str, dict] = {
    "vpc-cni": {"type": "networking", "requiresIamPermissions": True, "versions": [
        {"addonVersion": "v1.20.4-eksbuild.1", "clusterVersions": ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34"],
         "defaultFor": ["1.33", "1.34"]},
        {"addonVersion": "v1.19.2-eksbuild.5", "clusterVersions": ["1.29", "1.30", "1.31", "1.32"],
         "defaultFor": ["1.29", "1.30", "1.31", "1.32"]},
        {"addonVersion": "v1.18.6-eksbuild.1", "clusterVersions": ["1.29", "1.30", "1.31"], "defaultFor": []},
    ]},
    "coredns": {"type": "networking", "requiresIamPermissions": False, "versions": [
        {"addonVersion": "v1.12.1-eksbuild.2", "clusterVersions": ["1.33", "1.34"], "defaultFor": ["1.33", "1.34"]},
        {"addonVersion": "v1.11.4-eksbuild.2", "clusterVersions": ["1.29", "1.30", "1.31", "1.32"],
         "defaultFor": ["1.29", "1.30", "1.31", "1.32"]},
        {"addonVersion": "v1.11.3-eksbuild.1", "clusterVersions": ["1.29", "1.30", "1.31"], "defaultFor": []},
    ]},
    # The EBS CSI driver ("Store Kubernetes volumes with Amazon EBS", EKS
    # User Guide; its add-on runs with an IAM role for its service account,
    # `serviceAccountRoleArn`): one build supports a range of Kubernetes
    # versions, the newest build is the default for each. Assumption: which
    # builds, and their ranges (the User Guide names no table).
    "aws-ebs-csi-driver": {"type": "storage", "requiresIamPermissions": True, "versions": [
        {"addonVersion": "v1.48.0-eksbuild.2", "clusterVersions": ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34"],
         "defaultFor": ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34"]},
        {"addonVersion": "v1.45.0-eksbuild.2", "clusterVersions": ["1.29", "1.30", "1.31", "1.32", "1.33"],
         "defaultFor": []},
        {"addonVersion": "v1.37.0-eksbuild.1", "clusterVersions": ["1.29", "1.30", "1.31"], "defaultFor": []},
    ]},
    # metrics-server, an EKS community add-on ("Community add-ons", EKS User
    # Guide: published by EKS, owner `community`; it runs without an IAM
    # role). Assumptions: the type name, which builds, and their ranges.
    "metrics-server": {"type": "observability", "requiresIamPermissions": False, "owner": "community",
                       "versions": [
        {"addonVersion": "v0.8.0-eksbuild.1", "clusterVersions": ["1.30", "1.31", "1.32", "1.33", "1.34"],
         "defaultFor": ["1.30", "1.31", "1.32", "1.33", "1.34"]},
        {"addonVersion": "v0.7.2-eksbuild.3", "clusterVersions": ["1.29", "1.30", "1.31", "1.32"],
         "defaultFor": ["1.29"]},
    ]},
    "kube-proxy": {"type": "networking", "requiresIamPermissions": False, "versions": [
        {"addonVersion": "v1.34.0-eksbuild.2", "clusterVersions": ["1.34"], "defaultFor": ["1.34"]},
        {"addonVersion": "v1.33.3-eksbuild.4", "clusterVersions": ["1.33"], "defaultFor": ["1.33"]},
        {"addonVersion": "v1.32.3-eksbuild.7", "clusterVersions": ["1.32"], "defaultFor": ["1.32"]},
        {"addonVersion": "v1.31.7-eksbuild.7", "clusterVersions": ["1.31"], "defaultFor": ["1.31"]},
        {"addonVersion": "v1.31.3-eksbuild.2", "clusterVersions": ["1.31"], "defaultFor": []},
        {"addonVersion": "v1.30.11-eksbuild.5", "clusterVersions": ["1.30"], "defaultFor": ["1.30"]},
        {"addonVersion": "v1.29.15-eksbuild.5", "clusterVersions": ["1.29"], "defaultFor": ["1.29"]},
    ]},
}

# RDS engine versions (DescribeDBEngineVersions). A row may say `Default`
# (the default of its major version; else the newest minor of the major is)
# and `ValidUpgradeTarget` (versions it can be upgraded to; else every newer
# version in the table). Assumption: which minors of a newer major a version
# may go to (AWS publishes a table, "Choosing a major version for an RDS for
# PostgreSQL upgrade"; every newer one here).
DEFAULT_DB_ENGINE_VERSIONS: list[dict] = [
    {"Engine": "postgres", "EngineVersion": v, "DBParameterGroupFamily": f"postgres{v.split('.')[0]}"}
    for v in ("13.20", "14.17", "15.10", "15.12", "16.6", "16.8", "17.2", "17.4")
]
RDS_NS = "http://rds.amazonaws.com/doc/2014-10-31/"

# ElastiCache engine versions (DescribeCacheEngineVersions). `Default` as
# for RDS (else the newest version of the engine is its default).
DEFAULT_CACHE_ENGINE_VERSIONS: list[dict] = [
    {"Engine": "redis", "EngineVersion": "6.2", "CacheParameterGroupFamily": "redis6.x"},
    {"Engine": "redis", "EngineVersion": "7.0", "CacheParameterGroupFamily": "redis7"},
    {"Engine": "redis", "EngineVersion": "7.1", "CacheParameterGroupFamily": "redis7"},
    {"Engine": "valkey", "EngineVersion": "7.2", "CacheParameterGroupFamily": "valkey7"},
    {"Engine": "valkey", "EngineVersion": "8.0", "CacheParameterGroupFamily": "valkey8"},
]
# The families CreateCacheParameterGroup takes ("CacheParameterGroupFamily",
# ElastiCache API Reference, CreateCacheParameterGroup).
CACHE_PARAMETER_GROUP_FAMILIES = {
    "valkey8", "valkey7", "memcached1.4", "memcached1.5", "memcached1.6", "redis2.6", "redis2.8",
    "redis3.2", "redis4.0", "redis5.0", "redis6.x", "redis7",
}


def _version_key(text: str) -> tuple[int, ...]:
    """"16.8" as (16, 8), "v1.19.2-eksbuild.5" as (1, 19, 2, 5)."""
    numbers = re.findall(r"\d+", str(text))
    return tuple(int(n) for n in numbers)


def _major(text: str) -> str:
    return str(text).split(".")[0]


def _version_matches(asked: str, version: str) -> bool:
    """Whether an `EngineVersion` filter names this version: the version
    itself, or its major version ("16" for 16.x, "6.x" for 6.2). The API
    reference documents the exact form ("A specific database engine version
    to return details for"); the major form is inferred from `DefaultOnly`
    ("the default version of the specified engine or engine and major
    version combination") and from ModifyDBInstance, which takes a major
    version alone (RDS API Reference)."""
    asked = asked.strip()
    if asked.endswith(".x"):
        asked = asked[:-2]
    return version == asked or version.startswith(asked + ".")


def _epoch_day(day: str) -> float:
    """Midnight UTC of a YYYY-MM-DD day, in epoch seconds (how REST-JSON
    timestamps travel)."""
    return float(calendar.timegm(time.strptime(day, "%Y-%m-%d")))


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_offset(token: str | None) -> int | None:
    """The position an opaque page token stands for (0 without one), or
    None for a token the proxy did not hand out."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not text.startswith("offset:") or not text[7:].isdigit():
        return None
    return int(text[7:])


def _eks_json(answer: dict, status: int = 200) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
    return status, headers, json.dumps(answer).encode()


def _eks_error(status: int, code: str, message: str, cluster: str | None = None,
               nodegroup: str | None = None, addon: str | None = None) -> tuple[int, dict, bytes]:
    """An EKS error as AWS sends it: the code in `x-amzn-ErrorType`, a body
    naming the cluster, node group and add-on concerned (EKS API Reference,
    Common Errors and each operation's Errors)."""
    body = {"clusterName": cluster, "nodegroupName": nodegroup, "fargateProfileName": None,
            "addonName": addon, "subscriptionId": None, "message": message}
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return status, headers, json.dumps(body).encode()


def _json_error(code: str, message: str, status: int = 400) -> tuple[int, dict, bytes]:
    """An error of a JSON 1.1 service (WAFv2): `__type` and the message."""
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code,
               "x-amzn-RequestId": str(uuid.uuid4())}
    return status, headers, json.dumps({"__type": code, "Message": message}).encode()


def _query_answer(action: str, result: str, ns: str) -> tuple[int, dict, bytes]:
    """A query-protocol answer: <ActionResponse><ActionResult>...</...>."""
    body = (
        f'<{action}Response xmlns="{ns}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()
    return 200, {"Content-Type": "text/xml"}, body


def _xml(tag: str, value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{xml_escape(str(value))}</{tag}>"


def _max_records(params: dict[str, str]) -> int | str:
    """MaxRecords of an RDS or ElastiCache Describe call: 100 by default,
    20 to 100 ("MaxRecords ... Default: 100 Constraints: Minimum 20,
    maximum 100", DescribeDBEngineVersions and DescribeCacheEngineVersions,
    API references); the error message when out of range otherwise."""
    text = params.get("MaxRecords")
    if not text:
        return 100
    if not text.lstrip("-").isdigit() or not 20 <= int(text) <= 100:
        return f"Invalid value {text} for MaxRecords. Must be between 20 and 100"
    return int(text)


def _query_filters(params: dict[str, str]) -> dict[str, list[str]]:
    """Filters.Filter.N.Name / Filters.Filter.N.Values.Value.M as {name: values}."""
    found: dict[str, list[str]] = {}
    for key, name in params.items():
        match = re.fullmatch(r"Filters\.Filter\.(\d+)\.Name", key)
        if match:
            prefix = f"Filters.Filter.{match.group(1)}.Values.Value."
            found[name] = [v for k, v in sorted(params.items()) if k.startswith(prefix)]
    return found


def _form(params: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(params).encode()


@dataclass
class EksUpdate:
    """An update EKS runs (DescribeUpdate): InProgress for `reads_left`
    status reads, then Successful, when `changes` take effect."""

    id: str
    type: str
    params: list[dict]
    created_at: float
    reads_left: int
    nodegroup: str | None = None
    addon: str | None = None
    status: str = "InProgress"
    changes: dict = field(default_factory=dict)

    def answer(self) -> dict:
        return {"id": self.id, "status": self.status, "type": self.type, "params": self.params,
                "createdAt": self.created_at, "errors": []}


@dataclass
class EksClusterState:
    """What the proxy knows of one EKS cluster beyond moto: its version
    after an update, node groups' versions after theirs, its add-ons and
    its updates. `created_at` is moto's createdAt: a cluster of the same
    name made later is another cluster."""

    created_at: float
    version: str | None = None
    # The id of the cluster's own OIDC issuer (see `_eks_cluster_view`).
    issuer_id: str = field(default_factory=lambda: uuid.uuid4().hex.upper())
    nodegroups: dict[str, dict] = field(default_factory=dict)
    addons: dict[str, dict] = field(default_factory=dict)
    addon_reads: dict[str, int] = field(default_factory=dict)
    updates: dict[str, EksUpdate] = field(default_factory=dict)
    # Cluster access (moto has none of it): accessConfig and the access
    # entries by principal ARN, each with its associated policies.
    access_mode: str = "CONFIG_MAP"
    bootstrap_creator: bool = True
    access_entries: dict[str, dict] = field(default_factory=dict)
    node_roles: set = field(default_factory=set)
    # The cluster's name and ARN, for the ARNs of its access entries.
    cluster_ref: dict = field(default_factory=dict)


def _subscription_times(payload: bytes) -> bytes:
    """moto writes a Shield subscription's StartTime/EndTime as
    "dd/mm/YYYY, HH:MM:SS" text; AWS's JSON protocols send timestamps as
    epoch seconds (Shield API Reference, `Subscription`: StartTime and
    EndTime are Timestamps; Smithy "AWS JSON 1.1 protocol", timestamp
    serialization: epoch-seconds). The SDK cannot read moto's text."""
    import datetime

    try:
        answer = json.loads(payload)
    except ValueError:
        return payload
    subscription = answer.get("Subscription")
    if not isinstance(subscription, dict):
        return payload
    for key in ("StartTime", "EndTime"):
        value = subscription.get(key)
        if isinstance(value, str):
            try:
                moment = datetime.datetime.strptime(value, "%d/%m/%Y, %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                continue
            subscription[key] = moment.timestamp()
    return json.dumps(answer).encode()


class AwsProxy:
    """Runs on a free loopback port; `endpoint` is what the provider uses."""

    def __init__(
        self,
        upstream: str,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 7,
        delays: dict[str, float] | None = None,
        record: bool = False,
        throttle_rate: float = 0.0,
        drop_rate: float = 0.0,
        drop_after_rate: float = 0.0,
        creating_reads: int | dict[str, int] = 0,
        fault_filter=None,
        error_after_rate: float = 0.0,
        hang_after_rate: float = 0.0,
        hang_seconds: float = 0.0,
        eks_versions: list[dict] | None = None,
        eks_addon_versions: dict[str, dict] | None = None,
        db_engine_versions: list[dict] | None = None,
        cache_engine_versions: list[dict] | None = None,
        update_reads: int = 1,
        addon_reads: int = 1,
        failover_reads: int = 3,
    ):
        parsed = urllib.parse.urlparse(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.latency_ms = latency_ms
        # Fault rates, each a share of calls (they add up): a 5xx answer
        # (`error_rate`), a throttling answer (`throttle_rate`), the
        # connection closed without an answer before the call reaches moto
        # (`drop_rate`) or after moto has done it (`drop_after_rate`: the
        # client cannot know it happened, as when a connection breaks on the
        # way back from AWS).
        self.error_rate = error_rate
        self.throttle_rate = throttle_rate
        self.drop_rate = drop_rate
        self.drop_after_rate = drop_after_rate
        # Faults after moto has done the call: a 5xx answer
        # (`error_after_rate`; AWS documents that a 500 InternalError or a
        # 503 may come back for a request that took effect: "the request
        # may have succeeded", EC2 API reference, Error codes, and the AWS
        # SDKs' retry guidance on idempotency), or no answer for
        # `hang_seconds` (`hang_after_rate`: the client's attempt times out
        # while AWS has done the work).
        self.error_after_rate = error_after_rate
        self.hang_after_rate = hang_after_rate
        self.hang_seconds = hang_seconds
        # fault_filter(service, operation) -> bool: which calls faults may
        # hit (all when None).
        self.fault_filter = fault_filter
        # Regions whose endpoints are down: a regional outage. Every call
        # signed for one of them (IAM and other global services sign for
        # us-east-1) is answered ServiceUnavailable, HTTP 503, in the
        # service's own protocol ("Error retries and exponential backoff
        # in AWS", AWS General Reference: 5xx server errors are the
        # service's failure, not the request's), and is never forwarded:
        # nothing in that Region changes. AWS Regions are isolated from
        # one another ("Regions and Availability Zones", AWS Global
        # Infrastructure), so the other Regions answer as usual.
        self.down_regions: set[str] = set()
        # How many status reads of a component created through the proxy
        # report it as still being created: an int for every kind, or
        # {kind: reads} with kinds from CREATING_KINDS.
        self.creating_reads = creating_reads
        # (kind, region, id) -> status reads still to answer "creating"
        # (names are regional: a DR site has the primary's).
        self._creating: dict[tuple[str, str, str], int] = {}
        # (service, operation, client token) -> the answer AWS gave.
        self._answered_tokens: dict[tuple[str, str, str], tuple[int, dict, bytes]] = {}
        # S3 origins of distributions made through the proxy (moto drops
        # their S3OriginConfig and OriginAccessControlId), by distribution id.
        self._cloudfront_s3_origins: dict[str, dict[str, dict]] = {}
        # (region, alias) deleted in a Region whose key shares moto's alias map.
        self._hidden_aliases: set[tuple[str, str]] = set()
        # ARNs of read replicas promoted to standalone instances.
        self._promoted: set[str] = set()
        # Bucket -> rule ID -> the <SourceSelectionCriteria> it was put with.
        self._replication_criteria: dict[str, dict[str, str]] = {}
        # "Operation" or "service:Operation" -> seconds to hold the call.
        self.delays: dict[str, float] = dict(delays or {})
        self.record = record
        self.journal: list[Exchange] = []
        self.counters = Counters()
        self._lock = threading.Lock()
        # Calls forwarded to moto at once. Not AWS's behaviour but the
        # emulator's plumbing: moto_server accepts connections with a
        # backlog of 128 and, under the GIL, answers about one call at a
        # time. A thousand connections opened at once (ten environments
        # refreshed together, each reading its components concurrently)
        # made `make bench` fail with connections closed unanswered, most
        # likely its accept queue overflowing (inferred, not traced).
        # Queued here instead, they wait as long as in moto's queue.
        self._upstream_slots = threading.BoundedSemaphore(UPSTREAM_SLOTS)
        self._random = random.Random(seed)
        # (region, name): names are regional (a DR site has the same ones).
        self._deleted_groups: set[tuple[str, str]] = set()
        self._deleted_subnet_groups: set[tuple[str, str]] = set()
        self._performance_insights: dict[tuple[str, str], str] = {}
        # DB instance -> the Performance Insights key it was given (moto
        # drops it at create).
        self._performance_insights_key: dict[tuple[str, str], str] = {}
        # (region, log group) -> the KMS key AssociateKmsKey gave it ("" once
        # DisassociateKmsKey took it away); moto has neither operation.
        self._log_keys: dict[tuple[str, str], str] = {}
        # (primary region, secret name, replica region) -> the KMS key
        # ReplicateSecretToRegions gave the replica (moto reports its
        # default key for every replica).
        self._secret_replica_keys: dict[tuple[str, str, str], str] = {}
        # (region, replication group) -> log type -> its delivery, as
        # ModifyReplicationGroup set it (moto drops them).
        self._cache_log_delivery: dict[tuple[str, str], dict[str, dict]] = {}
        # (region, cluster name) -> the security group EKS made for it (see
        # `_eks_cluster_group`); a DR site's cluster has the primary's name.
        self.eks_cluster_groups: dict[tuple[str, str], str] = {}
        self.calls: list[Call] = []
        self._clients: dict[tuple[str, str], object] = {}
        # What AWS offers where moto has no such list (see the DEFAULT_*
        # tables): EKS Kubernetes versions (DescribeClusterVersions), EKS
        # add-on versions (DescribeAddonVersions), RDS and ElastiCache
        # engine versions (DescribeDBEngineVersions,
        # DescribeCacheEngineVersions).
        self.eks_versions = list(eks_versions if eks_versions is not None else DEFAULT_EKS_VERSIONS)
        self.eks_addon_versions = dict(eks_addon_versions if eks_addon_versions is not None else DEFAULT_EKS_ADDON_VERSIONS)
        self.db_engine_versions = list(db_engine_versions if db_engine_versions is not None else DEFAULT_DB_ENGINE_VERSIONS)
        self.cache_engine_versions = list(
            cache_engine_versions if cache_engine_versions is not None else DEFAULT_CACHE_ENGINE_VERSIONS)
        # Status reads an EKS update (cluster or node group version, add-on)
        # stays InProgress, and an add-on CREATING or DELETING.
        self.update_reads = update_reads
        self.addon_reads = addon_reads
        # Status reads a forced failover (RDS reboot, ElastiCache
        # TestFailover) stays `rebooting` / `modifying`.
        self.failover_reads = failover_reads
        # (region, cluster name) -> what the proxy keeps of an EKS cluster.
        self._eks: dict[tuple[str, str], EksClusterState] = {}
        # (region, name) -> a cache parameter group made through the proxy.
        self._cache_parameter_groups: dict[tuple[str, str], dict] = {}
        # (action, what blocked it) for each deletion refused with DependencyViolation.
        self.refused: list[tuple[str, list[str]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on,
            # the body waits for the client's delayed ACK (40 ms on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = proxy._serve(self.command, self.path, dict(self.headers), body, started)
                except _Drop:
                    # No answer at all: the client sees the connection end.
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def deleted_cache_subnet_groups(self) -> set[str]:
        """Cache subnet groups the provider deleted (moto cannot delete them)."""
        with self._lock:
            return {name for _, name in self._deleted_subnet_groups}

    def requests(self, service: str, action: str) -> list[dict[str, str]]:
        """Parameters of every `action` call made to `service` so far."""
        with self._lock:
            return [c.params for c in self.calls if c.service == service and c.action == action]

    def finish_creating(self) -> None:
        """Every component the proxy reports as being created is done."""
        with self._lock:
            self.creating_reads = 0
            self._creating.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- request classification ------------------------------------------------

    @staticmethod
    def _presigned_credential(headers: dict, path: str) -> str | None:
        """The credential of a request presigned in its query string (SigV4
        query authentication: `X-Amz-Credential`, no Authorization header),
        such as the STS GetCallerIdentity inside an EKS token."""
        if headers.get("Authorization") or headers.get("authorization") or "?" not in path:
            return None
        query = urllib.parse.parse_qs(path.split("?", 1)[1])
        return (query.get("X-Amz-Credential") or [None])[0]

    @classmethod
    def _routable(cls, headers: dict, path: str) -> dict:
        """Headers moto can route. AWS routes a presigned request by its
        host (sts.<region>.amazonaws.com), whose service is the one the
        credential scope names ("Authenticating Requests: Using Query
        Parameters (AWS Signature Version 4)", Amazon S3 API Reference; the
        same scheme for every SigV4 service); moto, behind one endpoint for
        every service, routes only on an Authorization header and sends
        anything else to S3. So the query's credential is forwarded as one
        (moto checks no signature)."""
        credential = cls._presigned_credential(headers, path)
        if credential is None:
            return headers
        return {**headers, "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=presigned"}

    @classmethod
    def _classify(cls, headers: dict, path: str, body: bytes) -> Call:
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if not auth and cls._presigned_credential(headers, path):
            auth = cls._routable(headers, path)["Authorization"]
        match = SERVICE_IN_AUTH.search(auth)
        region = match.group(1) if match else "us-east-1"
        service = match.group(2) if match else "unknown"
        target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
        params: dict[str, str] = {}
        cbor_operation = RpcV2Cbor.operation(headers, path)
        if cbor_operation:
            action = cbor_operation
        elif target:
            action = target.rsplit(".", 1)[-1]
        elif "Action=" in path:
            query = urllib.parse.parse_qs(path.split("?", 1)[-1])
            action = query.get("Action", [path.split("?")[0]])[0]
        else:
            content_type = headers.get("Content-Type") or headers.get("content-type") or ""
            if "x-www-form-urlencoded" in content_type and body:
                params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
            action = params.get("Action", path.split("?")[0])
        if service == "unknown" and action in UNSIGNED_STS_ACTIONS:
            # The calls that trade a token for credentials are not signed
            # (STS API Reference, AssumeRoleWithWebIdentity).
            service = "sts"
        return Call(service=service, action=action, params=params, region=region)

    # -- rules -------------------------------------------------------------------

    def _lifecycle(self, call: Call) -> tuple[int, dict, bytes] | None:
        """moto gaps: finish deletions AWS would finish."""
        if call.service != "elasticache":
            return None
        group = call.params.get("ReplicationGroupId")
        if call.action == "DescribeReplicationGroups" and (call.region, group) in self._deleted_groups:
            return _query_error("ReplicationGroupNotFoundFault", f"ReplicationGroup {group} not found.")
        if call.action == "DeleteCacheSubnetGroup":
            name = call.params.get("CacheSubnetGroupName", "")
            with self._lock:
                self._deleted_subnet_groups.add((call.region, name))
                self.counters.completed_deletions += 1
            body = (
                f'<DeleteCacheSubnetGroupResponse xmlns="{ELASTICACHE_NS}"><ResponseMetadata>'
                f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></DeleteCacheSubnetGroupResponse>"
            ).encode()
            return 200, {"Content-Type": "text/xml"}, body
        if call.action == "DescribeCacheSubnetGroups" and \
                (call.region, call.params.get("CacheSubnetGroupName")) in self._deleted_subnet_groups:
            name = call.params["CacheSubnetGroupName"]
            return _query_error("CacheSubnetGroupNotFoundFault", f"CacheSubnetGroup {name} not found.")
        if call.action == "CreateCacheSubnetGroup":
            self._deleted_subnet_groups.discard((call.region, call.params.get("CacheSubnetGroupName", "")))
        return None

    # -- EC2 dependencies, as AWS checks them -------------------------------------

    def _moto(self, service: str, region: str):
        """A boto3 client on moto itself, for the dependency checks."""
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
                self._clients[key] = session.client(
                    service, region_name=region, endpoint_url=f"http://{self.upstream_host}:{self.upstream_port}"
                )
            return self._clients[key]

    def _live_interfaces(self, region: str, filter_name: str, value: str) -> list[str]:
        """Interfaces matching the filter, without those of deleted NAT
        gateways (AWS deletes a NAT gateway's interface with it; moto keeps it)."""
        ec2 = self._moto("ec2", region)
        enis = ec2.describe_network_interfaces(Filters=[{"Name": filter_name, "Values": [value]}])["NetworkInterfaces"]
        dead = {
            address.get("NetworkInterfaceId")
            for nat in ec2.describe_nat_gateways()["NatGateways"]
            if nat["State"] in ("deleting", "deleted", "failed")
            for address in nat.get("NatGatewayAddresses", [])
        }
        return [e["NetworkInterfaceId"] for e in enis if e["NetworkInterfaceId"] not in dead]

    def _load_balancers(self, region: str) -> list[dict]:
        return self._moto("elbv2", region).describe_load_balancers()["LoadBalancers"]

    def _blockers(self, call: Call) -> list[str]:
        """What still depends on the object this EC2 call deletes."""
        region = call.region
        if call.action == "DeleteSubnet":
            subnet = call.params.get("SubnetId", "")
            found = [f"network interface {e}" for e in self._live_interfaces(region, "subnet-id", subnet)]
            found += [
                f"load balancer {lb['LoadBalancerArn']}"
                for lb in self._load_balancers(region)
                if any(z.get("SubnetId") == subnet for z in lb.get("AvailabilityZones", []))
            ]
            return found
        if call.action == "DeleteSecurityGroup":
            group = call.params.get("GroupId", "")
            if not group:
                return []
            found = [f"network interface {e}" for e in self._live_interfaces(region, "group-id", group)]
            found += [
                f"load balancer {lb['LoadBalancerArn']}"
                for lb in self._load_balancers(region)
                if group in lb.get("SecurityGroups", [])
            ]
            for other in self._moto("ec2", region).describe_security_groups()["SecurityGroups"]:
                if other["GroupId"] == group:
                    continue
                for rule in other.get("IpPermissions", []) + other.get("IpPermissionsEgress", []):
                    if any(pair.get("GroupId") == group for pair in rule.get("UserIdGroupPairs", [])):
                        found.append(f"a rule of security group {other['GroupId']}")
                        break
            return found
        if call.action == "DeleteVpc":
            vpc = call.params.get("VpcId", "")
            groups = self._moto("ec2", region).describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
            return [f"security group {g['GroupId']}" for g in groups if g["GroupName"] != "default"]
        return []

    def _dependencies(self, call: Call) -> tuple[int, dict, bytes] | None:
        if call.service != "ec2" or call.action not in ("DeleteSubnet", "DeleteSecurityGroup", "DeleteVpc"):
            return None
        try:
            blockers = self._blockers(call)
        except botocore.exceptions.ClientError:  # the object itself is unknown: let moto answer
            return None
        if not blockers:
            return None
        with self._lock:
            self.counters.dependency_violations += 1
            self.refused.append((call.action, blockers))
        target = call.params.get("SubnetId") or call.params.get("GroupId") or call.params.get("VpcId")
        body = (
            "<Response><Errors><Error><Code>DependencyViolation</Code>"
            f"<Message>The {call.action[6:].lower()} '{target}' has dependencies and cannot be deleted "
            f"(still used by {', '.join(blockers)}).</Message></Error></Errors>"
            f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
        ).encode()
        return 400, {"Content-Type": "text/xml"}, body

    def _after(self, call: Call, status: int, payload: bytes) -> bytes:
        if status != 200:
            return payload
        if call.service == "elasticache" and call.action == "DeleteReplicationGroup":
            with self._lock:
                self._deleted_groups.add((call.region, call.params.get("ReplicationGroupId", "")))
                self.counters.completed_deletions += 1
        if call.service == "rds":
            ident = call.params.get("DBInstanceIdentifier", "")
            if call.action in ("CreateDBInstance", "CreateDBInstanceReadReplica"):
                self._performance_insights[(call.region, ident)] = call.params.get("EnablePerformanceInsights", "false").lower()
                self._performance_insights_key[(call.region, ident)] = call.params.get("PerformanceInsightsKMSKeyId", "")
            elif call.action == "ModifyDBInstance" and "EnablePerformanceInsights" in call.params:
                self._performance_insights[(call.region, ident)] = call.params["EnablePerformanceInsights"].lower()
                if call.params.get("PerformanceInsightsKMSKeyId"):
                    self._performance_insights_key[(call.region, ident)] = call.params["PerformanceInsightsKMSKeyId"]
            if call.action == "ModifyDBInstance" and call.params.get("EngineVersion"):
                self._upgrade_read_replicas(call.region, ident)
            if call.action in ("CreateDBInstance", "ModifyDBInstance") and \
                    str(call.params.get("ManageMasterUserPassword", "")).lower() == "true":
                self._master_user_secret(call.region, ident)
            elif call.action == "DescribeDBInstances":
                payload = self._with_performance_insights(call.region, payload)
                payload = self._without_promoted_links(payload)
            if call.action == "CreateDBInstanceReadReplica" and call.params.get("DBSubnetGroupName") \
                    and call.params.get("SourceDBInstanceIdentifier", "").startswith("arn:"):
                # A cross-Region replica is made in the VPC of the subnet
                # group it is given, in its own Region (RDS API Reference,
                # CreateDBInstanceReadReplica, DBSubnetGroupName). moto
                # 5.2.5 looks the name up in the source's Region.
                self._moto("rds", call.region).modify_db_instance(
                    DBInstanceIdentifier=ident, DBSubnetGroupName=call.params["DBSubnetGroupName"],
                    ApplyImmediately=True)
            if call.action == "PromoteReadReplica":
                arn = re.search(rb"<DBInstanceArn>([^<]+)</DBInstanceArn>", payload)
                with self._lock:
                    self._promoted.add(arn.group(1).decode() if arn else f"{call.region}/{ident}")
                payload = self._without_promoted_links(payload)
        if call.service == "elasticache" and call.action == "ModifyReplicationGroup":
            self._keep_cache_log_delivery(call)
        if call.service == "elasticache" and call.action == "DescribeReplicationGroups":
            payload = self._with_cache_log_delivery(call, payload)
        if call.service == "logs" and call.action == "DescribeLogGroups":
            payload = self._with_log_keys(call, payload)
        return payload

    # -- RDS: promoted read replicas ---------------------------------------------------

    def _without_promoted_links(self, payload: bytes) -> bytes:
        """A promoted read replica is a standalone instance (RDS API
        Reference, PromoteReadReplica): it has no
        `ReadReplicaSourceDBInstanceIdentifier` ("if this DB instance is a
        read replica"), and its former source no longer lists it among its
        `ReadReplicaDBInstanceIdentifiers`. moto 5.2.5 keeps both links."""
        with self._lock:
            promoted = set(self._promoted)
        if not promoted:
            return payload

        def one(match: re.Match) -> bytes:
            body = match.group(1)
            arn = re.search(rb"<DBInstanceArn>([^<]+)</DBInstanceArn>", body)
            if arn and arn.group(1).decode() in promoted:
                body = re.sub(rb"<ReadReplicaSourceDBInstanceIdentifier>[^<]*</ReadReplicaSourceDBInstanceIdentifier>", b"", body)

            def drop(m: re.Match) -> bytes:
                return b"" if m.group(1).decode() in promoted else m.group(0)

            body = re.sub(rb"<ReadReplicaDBInstanceIdentifier>([^<]*)</ReadReplicaDBInstanceIdentifier>", drop, body)
            return b"<DBInstance>" + body + b"</DBInstance>"

        return re.sub(rb"<DBInstance>(.*?)</DBInstance>", one, payload, flags=re.S)

    # -- S3 replication ----------------------------------------------------------------

    def _s3_replication_after(self, operation: str, path: str, body: bytes, status: int, payload: bytes) -> bytes:
        """GetBucketReplication answers each rule as it was put (S3 API
        Reference, GetBucketReplication / ReplicationRule): moto 5.2.5 drops
        a rule's `SourceSelectionCriteria` (whether SSE-KMS objects are
        replicated), so the proxy keeps it from PutBucketReplication and
        puts it back into moto's answer, rule by rule (a rule moto no
        longer has gets nothing)."""
        if operation not in ("PutBucketReplication", "GetBucketReplication", "DeleteBucketReplication"):
            return payload
        bucket = path.split("?", 1)[0].strip("/").split("/", 1)[0]
        rule_re = re.compile(rb"<Rule>(.*?)</Rule>", re.S)
        id_re = re.compile(rb"<ID>(.*?)</ID>", re.S)
        criteria_re = re.compile(rb"<SourceSelectionCriteria>.*?</SourceSelectionCriteria>", re.S)
        if status not in (200, 204):
            return payload
        if operation == "DeleteBucketReplication":
            with self._lock:
                self._replication_criteria.pop(bucket, None)
            return payload
        if operation == "PutBucketReplication":
            kept = {}
            for rule in rule_re.findall(body or b""):
                ident, criteria = id_re.search(rule), criteria_re.search(rule)
                if ident and criteria:
                    kept[ident.group(1).decode()] = criteria.group(0).decode()
            with self._lock:
                self._replication_criteria[bucket] = kept
            return payload
        with self._lock:
            kept = dict(self._replication_criteria.get(bucket, {}))
        if not kept:
            return payload

        def restore(match: re.Match) -> bytes:
            rule = match.group(1)
            ident = id_re.search(rule)
            criteria = kept.get(ident.group(1).decode()) if ident else None
            if not criteria or b"<SourceSelectionCriteria>" in rule:
                return match.group(0)
            return b"<Rule>" + rule + criteria.encode() + b"</Rule>"

        return rule_re.sub(restore, payload)

    # -- KMS multi-Region keys ----------------------------------------------------------

    def _kms_after(self, call: Call, body: bytes, status: int, payload: bytes) -> None:
        """ReplicateKey's `Tags` are the replica's tags (KMS API Reference,
        ReplicateKey: "Assigns one or more tags to the replica key"); moto
        5.2.5 drops them, so they are put on the replica in its region."""
        if call.service != "kms" or call.action != "ReplicateKey" or status != 200:
            return
        try:
            request = json.loads(body or b"{}")
            replica = json.loads(payload)["ReplicaKeyMetadata"]
        except (ValueError, KeyError):
            return
        if request.get("Tags"):
            self._moto("kms", request["ReplicaRegion"]).tag_resource(
                KeyId=replica["KeyId"], Tags=request["Tags"])

    # -- the security group EKS makes for a cluster ------------------------------------

    def _eks_cluster_group(self, call: Call, operation: str, path: str, body: bytes, status: int, payload: bytes) -> bytes:
        """EKS makes a security group for every cluster, `eks-cluster-sg-<name>-<id>`
        in the cluster's VPC, tagged `aws:eks:cluster-name` and
        `kubernetes.io/cluster/<name> = owned`, that lets in all traffic from
        itself and out all traffic; it reports it as
        `resourcesVpcConfig.clusterSecurityGroupId`, attaches it to the
        control plane's interfaces and to the nodes of managed node groups
        without a launch template, and deletes it with the cluster ("Amazon
        EKS security group requirements and considerations", EKS User Guide;
        `DescribeCluster`, EKS API Reference). moto makes none: the proxy
        makes it in moto and reports it."""
        if call.service != "eks" or status != 200:
            return payload
        parts = [p for p in path.split("?")[0].split("/") if p]
        if operation == "CreateCluster":
            request = json.loads(body or b"{}")
            name = request.get("name", "")
            subnets = request.get("resourcesVpcConfig", {}).get("subnetIds", [])
            if name and subnets:
                ec2 = self._moto("ec2", call.region)
                vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
                group = ec2.create_security_group(
                    GroupName=f"eks-cluster-sg-{name}-{uuid.uuid4().hex[:10]}",
                    Description="EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.",
                    VpcId=vpc,
                    TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                        {"Key": "aws:eks:cluster-name", "Value": name},
                        {"Key": f"kubernetes.io/cluster/{name}", "Value": "owned"},
                        {"Key": "Name", "Value": f"eks-cluster-sg-{name}"},
                    ]}],
                )["GroupId"]
                ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
                    {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]}])
                with self._lock:
                    self.eks_cluster_groups[(call.region, name)] = group
            return self._with_cluster_group(payload, call.region, name)
        if operation == "DescribeCluster" and len(parts) >= 2:
            return self._with_cluster_group(payload, call.region, parts[1])
        if operation == "DeleteCluster" and len(parts) >= 2:
            with self._lock:
                group = self.eks_cluster_groups.pop((call.region, parts[1]), None)
            if group:
                ec2 = self._moto("ec2", call.region)
                # Rules of other groups that let it in go with it.
                for other in ec2.describe_security_groups(
                        Filters=[{"Name": "ip-permission.group-id", "Values": [group]}])["SecurityGroups"]:
                    for permission in other["IpPermissions"]:
                        pairs = [p for p in permission.get("UserIdGroupPairs", []) if p.get("GroupId") == group]
                        if pairs and other["GroupId"] != group:
                            try:
                                ec2.revoke_security_group_ingress(GroupId=other["GroupId"], IpPermissions=[
                                    {**{k: v for k, v in permission.items() if k in ("IpProtocol", "FromPort", "ToPort")},
                                     "UserIdGroupPairs": [{"GroupId": group}]}])
                            except botocore.exceptions.ClientError:
                                pass  # already gone (a repeated DeleteCluster)
                try:
                    ec2.delete_security_group(GroupId=group)
                except botocore.exceptions.ClientError:
                    pass
        return payload

    def _with_cluster_group(self, payload: bytes, region: str, name: str) -> bytes:
        with self._lock:
            group = self.eks_cluster_groups.get((region, name))
        if not group:
            return payload
        try:
            answer = json.loads(payload)
        except ValueError:
            return payload
        cluster = answer.get("cluster")
        if isinstance(cluster, dict):
            cluster.setdefault("resourcesVpcConfig", {})["clusterSecurityGroupId"] = group
        return json.dumps(answer).encode()

    # Characters RDS allows in a master password: printable ASCII but
    # / ' " @ and space ("Naming constraints in Amazon RDS", RDS User Guide).
    RDS_PASSWORD_CHARACTERS = "".join(
        c for c in map(chr, range(33, 127)) if c not in "/'\"@")

    def _master_user_secret(self, region: str, ident: str) -> None:
        """With ManageMasterUserPassword, RDS generates the master password
        and keeps it with the master username in a secret it manages,
        `{"username", "password"}` ("Password management with Amazon RDS and
        AWS Secrets Manager", RDS User Guide). moto writes the same
        `admin`/`P@55w0rd!` into every such secret: the proxy puts the
        instance's own master username and a generated password in.
        Assumption: the password's length (28) and that it may use every
        character RDS allows."""
        rds = self._moto("rds", region)
        try:
            db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except (botocore.exceptions.ClientError, IndexError):
            return
        arn = (db.get("MasterUserSecret") or {}).get("SecretArn")
        if not arn:
            return
        password = "".join(random.SystemRandom().choice(self.RDS_PASSWORD_CHARACTERS) for _ in range(28))
        self._moto("secretsmanager", region).put_secret_value(
            SecretId=arn, SecretString=json.dumps({"username": db["MasterUsername"], "password": password}))

    def _with_performance_insights(self, region: str, payload: bytes) -> bytes:
        """Instances are named per region: the same identifier can be an
        instance in two regions (a DR site's)."""
        text = payload.decode()

        def add(match: re.Match) -> str:
            enabled = self._performance_insights.get((region, match.group(1)), "false")
            extra = ""
            if enabled == "true":
                # With Performance Insights on, AWS reports its key and its
                # retention, 7 days unless asked otherwise (RDS API
                # Reference, DBInstance: PerformanceInsightsKMSKeyId,
                # PerformanceInsightsRetentionPeriod "The default is 7 days").
                key = self._performance_insights_key.get((region, match.group(1)))
                if key:
                    extra += f"<PerformanceInsightsKMSKeyId>{xml_escape(key)}</PerformanceInsightsKMSKeyId>"
                extra += "<PerformanceInsightsRetentionPeriod>7</PerformanceInsightsRetentionPeriod>"
            return f"{match.group(0)}<PerformanceInsightsEnabled>{enabled}</PerformanceInsightsEnabled>{extra}"

        if "<PerformanceInsightsEnabled>" in text:
            return payload
        # moto reports the key only after a ModifyDBInstance: drop its own.
        text = re.sub(r"<PerformanceInsightsKMSKeyId>[^<]*</PerformanceInsightsKMSKeyId>", "", text)
        return re.sub(r"<DBInstanceIdentifier>([^<]+)</DBInstanceIdentifier>", add, text).encode()

    def _delay(self, call: Call, operation: str) -> None:
        seconds = self.delays.get(f"{call.service}:{operation}", self.delays.get(operation, 0.0))
        if seconds:
            with self._lock:
                self.counters.injected_delays += 1
            time.sleep(seconds)

    def _fault(self, call: Call, operation: str) -> tuple[int, dict, bytes] | str | None:
        """Latency, then maybe a fault: an answer to send instead of
        forwarding, "drop", "drop-after", "5xx-after", "hang-after", or None."""
        if call.region in self.down_regions:
            with self._lock:
                self.counters.refused_down += 1
            return fault_answer(call.service, "5xx")
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
            with self._lock:
                self.counters.injected_latency += 1
        rates = (
            self.error_rate,
            self.throttle_rate,
            self.drop_rate,
            self.drop_after_rate,
            self.error_after_rate,
            self.hang_after_rate,
        )
        if not any(rates):
            return None
        if self.fault_filter is not None and not self.fault_filter(call.service, operation):
            return None
        with self._lock:
            roll = self._random.random()
        kinds = ("5xx", "throttle", "drop", "drop-after", "5xx-after", "hang-after")
        for kind, rate in zip(kinds, rates):
            if roll < rate:
                break
            roll -= rate
        else:
            return None
        key = f"{call.service}:{operation}"
        with self._lock:
            self.counters.faults_by_operation[key] = self.counters.faults_by_operation.get(key, 0) + 1
            if kind == "5xx":
                self.counters.injected_errors += 1
            elif kind == "throttle":
                self.counters.injected_throttles += 1
            elif kind == "drop":
                self.counters.injected_drops += 1
            elif kind == "drop-after":
                self.counters.injected_drops_after_forwarding += 1
            elif kind == "5xx-after":
                self.counters.injected_errors_after_forwarding += 1
            else:
                self.counters.injected_hangs_after_forwarding += 1
        if kind in ("5xx", "throttle"):
            return fault_answer(call.service, kind)
        return kind

    # -- client tokens, as AWS honours them ---------------------------------------------

    @staticmethod
    def _client_token(call: Call, operation: str, body: bytes) -> tuple[str, str, str] | None:
        """The idempotency token of a create that carries one: EC2's
        `ClientToken` (the SDK fills it in for CreateNatGateway,
        CreateRouteTable, ...), Secrets Manager's `ClientRequestToken`."""
        if call.service == "ec2" and call.params.get("ClientToken"):
            return call.service, operation, call.params["ClientToken"]
        if call.service == "eks" and operation in EKS_TOKEN_OPERATIONS:
            # The SDKs fill in `clientRequestToken` (an idempotency token);
            # for the operations the proxy answers itself.
            try:
                token = json.loads(body or b"{}").get("clientRequestToken")
            except (ValueError, AttributeError):
                return None
            return (call.service, operation, token) if token else None
        if call.service == "secretsmanager" and operation == "CreateSecret":
            try:
                token = json.loads(body or b"{}").get("ClientRequestToken")
            except ValueError:
                return None
            return (call.service, operation, token) if token else None
        if call.service == "cloudfront" and operation == "CreateDistribution":
            # "If the CallerReference is a value that you already sent in a
            # previous request to create a distribution, and the content of
            # the DistributionConfig is identical to the original request,
            # CloudFront returns the same response" (CreateDistribution,
            # CloudFront API Reference); another content with it is refused
            # (DistributionAlreadyExists), which moto answers to both.
            match = re.search(rb"<CallerReference>([^<]*)</CallerReference>", body or b"")
            if not match:
                return None
            import hashlib
            return call.service, operation, match[1].decode() + ":" + hashlib.sha256(body).hexdigest()
        return None

    def _repeated(self, call: Call, operation: str, body: bytes) -> tuple[int, dict, bytes] | None:
        """A create repeated with the same client token gets the first
        answer again, as on AWS (moto ignores the token and makes a second
        object)."""
        token = self._client_token(call, operation, body)
        if token is None:
            return None
        with self._lock:
            answer = self._answered_tokens.get(token)
            if answer is not None:
                self.counters.repeated_tokens += 1
        return answer

    # -- "still creating" -----------------------------------------------------------

    def _reads_for(self, kind: str) -> int:
        if isinstance(self.creating_reads, dict):
            return int(self.creating_reads.get(kind, 0))
        return int(self.creating_reads or 0)

    def _take_creating(self, kind: str, region: str, ident: str) -> bool:
        """True when this status read of (kind, ident) in `region` answers "creating"."""
        with self._lock:
            left = self._creating.get((kind, region, ident), 0)
            if left <= 0:
                return False
            self._creating[(kind, region, ident)] = left - 1
            self.counters.injected_creating += 1
            return True

    def _created(self, kind: str, region: str, ident: str) -> None:
        reads = self._reads_for(kind)
        if reads and ident:
            with self._lock:
                self._creating[(kind, region, ident)] = reads

    def _creating_rewrite(self, call: Call, method: str, path: str, body: bytes, operation: str, payload: bytes) -> bytes:
        """Remembers components created through the proxy and reports them
        as still being created for their first N status reads, in the
        fields the services use (EKS `CREATING`, RDS and ElastiCache
        `creating`, CloudFront `InProgress`, NAT gateways `pending`)."""
        if not self.creating_reads:
            return payload
        route = path.split("?")[0]
        if call.service == "eks":
            parts = [p for p in route.split("/") if p]
            if operation == "CreateCluster":
                self._created("eks-cluster", call.region, json.loads(body or b"{}").get("name", ""))
            elif operation == "CreateNodegroup":
                name = json.loads(body or b"{}").get("nodegroupName", "")
                self._created("eks-nodegroup", call.region, f"{parts[1]}/{name}")
            elif operation == "DescribeCluster" and self._take_creating("eks-cluster", call.region, parts[1]):
                return _json_status(payload, "cluster", "CREATING")
            elif operation == "DescribeNodegroup" and self._take_creating("eks-nodegroup", call.region, f"{parts[1]}/{parts[3]}"):
                return _json_status(payload, "nodegroup", "CREATING")
            return payload
        if call.service == "rds":
            if operation in ("CreateDBInstance", "CreateDBInstanceReadReplica"):
                self._created("rds", call.region, call.params.get("DBInstanceIdentifier", ""))
            elif operation == "RestoreDBInstanceToPointInTime":
                # "The new DB instance is created ... with the status
                # creating" (RDS User Guide, Restoring a DB instance to a
                # specified time).
                self._created("rds", call.region, call.params.get("TargetDBInstanceIdentifier", ""))
            elif operation == "DescribeDBInstances":
                return self._rewrite_xml(payload, call.region, "DBInstance", "DBInstanceIdentifier", "rds", "DBInstanceStatus", "creating")
            return payload
        if call.service == "elasticache":
            if operation == "CreateReplicationGroup":
                self._created("elasticache", call.region, call.params.get("ReplicationGroupId", ""))
            elif operation == "DescribeReplicationGroups":
                return self._rewrite_xml(payload, call.region, "ReplicationGroup", "ReplicationGroupId", "elasticache", "Status", "creating")
            return payload
        if call.service == "ec2":
            if operation == "CreateNatGateway":
                # AWS answers a new NAT gateway as pending.
                text = payload.decode()
                ident = re.search(r"<natGatewayId>([^<]+)</natGatewayId>", text)
                if ident:
                    self._created("nat", call.region, ident.group(1))
                    return re.sub(r"<state>[^<]*</state>", "<state>pending</state>", text, count=1).encode()
            elif operation == "DescribeNatGateways":
                # A gateway's <state> follows its <natGatewayId> (nested
                # address items come before it).
                def pending(match: re.Match) -> str:
                    if match.group(3) == "available" and self._take_creating("nat", call.region, match.group(2)):
                        return f"{match.group(1)}pending{match.group(4)}"
                    return match.group(0)

                text = payload.decode()
                pattern = r"(<natGatewayId>([^<]+)</natGatewayId>.*?<state>)([^<]*)(</state>)"
                return re.sub(pattern, pending, text, flags=re.S).encode()
            return payload
        if call.service == "cloudfront":
            if operation == "CreateDistribution":
                text = payload.decode()
                ident = re.search(r"<Id>([^<]+)</Id>", text)
                if ident:
                    self._created("cloudfront", call.region, ident.group(1))
                    # AWS answers a new distribution as InProgress.
                    return re.sub(r"<Status>[^<]*</Status>", "<Status>InProgress</Status>", text, count=1).encode()
            elif method == "GET" and re.match(r"^/[^/]+/distribution/[^/]+/?$", route):
                ident = route.rstrip("/").rsplit("/", 1)[1]
                if self._take_creating("cloudfront", call.region, ident):
                    return re.sub(r"<Status>[^<]*</Status>", "<Status>InProgress</Status>", payload.decode(), count=1).encode()
            return payload
        return payload

    def _rewrite_xml(self, payload: bytes, region: str, item: str, ident: str, kind: str, field_name: str, status: str) -> bytes:
        text = payload.decode()
        pieces, last = [], 0
        for start, end, name in _xml_items(text, item, ident):
            block = text[start:end]
            if self._take_creating(kind, region, name):
                block = re.sub(rf"<{field_name}>[^<]*</{field_name}>", f"<{field_name}>{status}</{field_name}>", block)
                pieces.append(text[last:start])
                pieces.append(block)
                last = end
        if not pieces:
            return payload
        pieces.append(text[last:])
        return "".join(pieces).encode()

    # -- what moto lacks, answered as AWS does ------------------------------------------

    def _emulate(self, call: Call, operation: str, path: str, body: bytes) -> tuple[tuple[int, dict, bytes] | None, bytes]:
        """An answer of the proxy's own for what moto lacks or answers
        unlike AWS (or None), and the request body to forward otherwise
        (rewritten where AWS fills in what the request leaves out)."""
        if call.service == "eks":
            return self._eks_emulate(call, operation, path, body)
        if call.service == "rds":
            return self._rds(call, body)
        if call.service == "elasticache":
            return self._elasticache(call), body
        if call.service == "logs":
            return self._logs(call, body), body
        if call.service == "secretsmanager" and operation == "DeleteSecret":
            return self._delete_replicated_secret(call, body), body
        if call.service == "wafv2" and operation == "ListResourcesForWebACL":
            return self._list_resources_for_web_acl(call, body), body
        if call.service == "cloudtrail" and operation in ("CreateTrail", "UpdateTrail"):
            return self._cloudtrail_delivery_allowed(call, body), body
        if call.service == "kms" and operation in ("DeleteAlias", "CreateAlias", "UpdateAlias", "DescribeKey", "ListAliases"):
            return self._kms_regional_aliases(call, operation, body), body
        return None, body

    def _kms_regional_aliases(self, call: Call, operation: str, body: bytes) -> tuple[int, dict, bytes] | None:
        """Aliases are regional: a multi-Region key's replica gets none of
        the primary's, and deleting one in a Region leaves the others (KMS
        Developer Guide, "Multi-Region keys in AWS KMS": "aliases ... are
        not shared or synchronized"). moto 5.2.5 copies the key object into
        the replica's Region with the primary's alias map, so a DeleteAlias
        in the replica's Region would delete the primary's alias too. The
        proxy answers such a DeleteAlias itself and hides the alias in that
        Region until it is made again there."""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        region = call.region
        if operation in ("CreateAlias", "UpdateAlias"):
            with self._lock:
                self._hidden_aliases.discard((region, request.get("AliasName", "")))
            return None
        if operation == "DescribeKey":
            key = request.get("KeyId", "")
            name = "alias/" + key.split(":alias/", 1)[1] if ":alias/" in key else key
            with self._lock:
                hidden = (region, name) in self._hidden_aliases
            if hidden:
                return 400, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps({
                    "__type": "NotFoundException",
                    "message": f"Alias arn:aws:kms:{region}:123456789012:{name} is not found."}).encode()
            return None
        if operation == "ListAliases":
            with self._lock:
                hidden = {a for r, a in self._hidden_aliases if r == region}
            if not hidden:
                return None
            answer = self._moto("kms", region).list_aliases(
                **({"KeyId": request["KeyId"]} if request.get("KeyId") else {}))
            aliases = [{k: (v.timestamp() if hasattr(v, "timestamp") else v) for k, v in a.items()}
                       for a in answer["Aliases"] if a["AliasName"] not in hidden]
            return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(
                {"Aliases": aliases, "Truncated": False}).encode()
        # DeleteAlias: shared with another Region's key of the same id?
        name = request.get("AliasName", "")
        kms = self._moto("kms", region)
        try:
            key = kms.describe_key(KeyId=name)["KeyMetadata"]
        except Exception:
            return None
        if not key.get("MultiRegion"):
            return None
        others = [r for r in [key.get("MultiRegionConfiguration", {}).get("PrimaryKey", {}).get("Region")]
                  + [k.get("Region") for k in key.get("MultiRegionConfiguration", {}).get("ReplicaKeys", [])]
                  if r and r != region]
        if not others:
            return None
        with self._lock:
            self._hidden_aliases.add((region, name))
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, b"{}"

    def forget(self) -> None:
        """Forget what the proxy keeps about AWS objects (moto was reset);
        what it observed (calls, counters, journal) stays."""
        with self._lock:
            self._eks.clear()
            self._cache_parameter_groups.clear()
            self._deleted_groups.clear()
            self._deleted_subnet_groups.clear()
            self._performance_insights.clear()
            self._performance_insights_key.clear()
            self._log_keys.clear()
            self._secret_replica_keys.clear()
            self._cache_log_delivery.clear()
            self.eks_cluster_groups.clear()
            self._creating.clear()
            self._answered_tokens.clear()
            self._cloudfront_s3_origins.clear()
            self._replication_criteria.clear()
            self._promoted.clear()
            self._hidden_aliases.clear()

    # -- CloudWatch Logs: log group keys and retention ---------------------------------

    # The periods PutRetentionPolicy accepts (CloudWatch Logs API
    # Reference, PutRetentionPolicy, `retentionInDays`: "Possible values
    # are: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    # 1096, 1827, 2192, 2557, 2922, 3288, and 3653"); moto takes any.
    LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                          2557, 2922, 3288, 3653}

    def _logs(self, call: Call, body: bytes) -> tuple[int, dict, bytes] | None:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return None
        name = params.get("logGroupName", "")
        key = (call.region, name)
        if call.action == "PutRetentionPolicy" and params.get("retentionInDays") not in self.LOG_RETENTION_DAYS:
            with self._lock:
                self.counters.emulated += 1
            return _json_error("InvalidParameterException",
                               f"1 validation error detected: Value '{params.get('retentionInDays')}' at "
                               "'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: "
                               f"{sorted(self.LOG_RETENTION_DAYS)}")
        if call.action in ("CreateLogGroup", "DeleteLogGroup"):
            # A new group has the key it was created with (moto keeps it);
            # a deleted one takes its association with it.
            with self._lock:
                self._log_keys.pop(key, None)
            return None
        if call.action not in ("AssociateKmsKey", "DisassociateKmsKey"):
            return None
        # AssociateKmsKey: "Associates the specified KMS key with ... the
        # specified log group"; DisassociateKmsKey: "the log group is no
        # longer encrypted" for new data (CloudWatch Logs API Reference,
        # AssociateKmsKey, DisassociateKmsKey). Both fail with
        # ResourceNotFoundException for a group that does not exist.
        groups = self._moto("logs", call.region).describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        if not any(g["logGroupName"] == name for g in groups):
            return _json_error("ResourceNotFoundException", "The specified log group does not exist.")
        with self._lock:
            self.counters.emulated += 1
            self._log_keys[key] = params.get("kmsKeyId", "") if call.action == "AssociateKmsKey" else ""
        return 200, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}, b"{}"

    def _with_log_keys(self, call: Call, payload: bytes) -> bytes:
        with self._lock:
            keys = {name: k for (region, name), k in self._log_keys.items() if region == call.region}
        if not keys:
            return payload
        answer = json.loads(payload)
        for group in answer.get("logGroups", []):
            if group.get("logGroupName") in keys:
                k = keys[group["logGroupName"]]
                if k:
                    group["kmsKeyId"] = k
                else:
                    group.pop("kmsKeyId", None)
        return json.dumps(answer).encode()

    # -- Secrets Manager: replicas ---------------------------------------------------------

    def _secret_name(self, region: str, secret_id: str) -> str | None:
        try:
            return self._moto("secretsmanager", region).describe_secret(SecretId=secret_id)["Name"]
        except botocore.exceptions.ClientError:
            return None

    def _delete_replicated_secret(self, call: Call, body: bytes) -> tuple[int, dict, bytes] | None:
        """"You can't delete a primary secret if it is replicated to other
        Regions. First delete the replicas, then delete the primary secret"
        (Secrets Manager User Guide, "Delete an AWS Secrets Manager
        secret"); DeleteSecret's error for a request the resource's state
        does not allow is InvalidRequestException (Secrets Manager API
        Reference, DeleteSecret, Errors). moto deletes it."""
        try:
            secret_id = json.loads(body or b"{}").get("SecretId", "")
            described = self._moto("secretsmanager", call.region).describe_secret(SecretId=secret_id)
        except (ValueError, botocore.exceptions.ClientError):
            return None
        regions = [r["Region"] for r in described.get("ReplicationStatus", [])]
        if not regions or described.get("PrimaryRegion"):
            return None
        with self._lock:
            self.counters.emulated += 1
        return _json_error("InvalidRequestException",
                           f"You can't delete secret {described['Name']} because it is replicated to "
                           f"{', '.join(regions)}. First remove the replicas (RemoveRegionsFromReplication).")

    def _secret_replicas_after(self, call: Call, operation: str, body: bytes, payload: bytes) -> bytes:
        """A replica is encrypted with the key ReplicateSecretToRegions
        names for its Region (`AddReplicaRegions[].KmsKeyId`; the Region's
        `aws/secretsmanager` key without one), and `ReplicationStatus`
        reports it (Secrets Manager API Reference, ReplicateSecretToRegions,
        ReplicaRegionType, ReplicationStatusType). moto 5.2.5 reports its
        default key for every replica."""
        if operation not in ("ReplicateSecretToRegions", "RemoveRegionsFromReplication", "DescribeSecret"):
            return payload
        try:
            request = json.loads(body or b"{}")
            answer = json.loads(payload or b"{}")
        except ValueError:
            return payload
        if operation == "DescribeSecret":
            name = answer.get("Name", "")
        else:
            name = self._secret_name(call.region, request.get("SecretId", "")) or ""
        with self._lock:
            if operation == "ReplicateSecretToRegions":
                for replica in request.get("AddReplicaRegions", []):
                    key = replica.get("KmsKeyId") or "alias/aws/secretsmanager"
                    self._secret_replica_keys[(call.region, name, replica.get("Region", ""))] = key
                self.counters.emulated += 1
            elif operation == "RemoveRegionsFromReplication":
                for region in request.get("RemoveReplicaRegions", []):
                    self._secret_replica_keys.pop((call.region, name, region), None)
            for status in answer.get("ReplicationStatus", []):
                key = self._secret_replica_keys.get((call.region, name, status.get("Region", "")))
                if key:
                    status["KmsKeyId"] = key
        return json.dumps(answer).encode()

    # -- ElastiCache: log delivery ---------------------------------------------------------

    def _keep_cache_log_delivery(self, call: Call) -> None:
        """ModifyReplicationGroup's LogDeliveryConfigurations: an enabled
        one sets that log type's delivery, a disabled one removes it
        (ElastiCache API Reference, LogDeliveryConfigurationRequest:
        "Enabled: Specify if log delivery is enabled"; ElastiCache User
        Guide, "Log delivery": a delivery is `active` once set)."""
        prefix = "LogDeliveryConfigurations.LogDeliveryConfigurationRequest."
        requests: dict[str, dict[str, str]] = {}
        for k, v in call.params.items():
            if k.startswith(prefix):
                n, _, field_name = k[len(prefix):].partition(".")
                requests.setdefault(n, {})[field_name] = v
        if not requests:
            return
        group = call.params.get("ReplicationGroupId", "")
        with self._lock:
            self.counters.emulated += 1
            kept = self._cache_log_delivery.setdefault((call.region, group), {})
            for r in requests.values():
                log_type = r.get("LogType", "")
                if r.get("Enabled", "true").lower() == "false":
                    kept.pop(log_type, None)
                    continue
                kept[log_type] = {
                    "LogType": log_type,
                    "DestinationType": r.get("DestinationType", ""),
                    "LogGroup": r.get("DestinationDetails.CloudWatchLogsDetails.LogGroup", ""),
                    "LogFormat": r.get("LogFormat", ""),
                }

    def _with_cache_log_delivery(self, call: Call, payload: bytes) -> bytes:
        text = payload.decode()
        with self._lock:
            kept = {g: dict(d) for (region, g), d in self._cache_log_delivery.items() if region == call.region}

        def one(d: dict) -> str:
            return (
                "<LogDeliveryConfiguration>"
                f"<LogType>{xml_escape(d['LogType'])}</LogType>"
                f"<DestinationType>{xml_escape(d['DestinationType'])}</DestinationType>"
                "<DestinationDetails><CloudWatchLogsDetails>"
                f"<LogGroup>{xml_escape(d['LogGroup'])}</LogGroup>"
                "</CloudWatchLogsDetails></DestinationDetails>"
                f"<LogFormat>{xml_escape(d['LogFormat'])}</LogFormat><Status>active</Status>"
                "</LogDeliveryConfiguration>"
            )

        def fix(match: re.Match) -> str:
            member = match.group(0)
            ident = re.search(r"<ReplicationGroupId>([^<]+)</ReplicationGroupId>", member)
            deliveries = kept.get(ident.group(1)) if ident else None
            if deliveries is None:
                return member
            block = "<LogDeliveryConfigurations>" + "".join(one(d) for d in deliveries.values()) + \
                "</LogDeliveryConfigurations>"
            member = re.sub(r"<LogDeliveryConfigurations\s*/>|<LogDeliveryConfigurations>.*?</LogDeliveryConfigurations>",
                            "", member, flags=re.S)
            return member.replace("</ReplicationGroupId>", "</ReplicationGroupId>" + block, 1)

        return re.sub(r"<ReplicationGroup>.*?</ReplicationGroup>", fix, text, flags=re.S).encode()

    # -- EKS: versions, version updates and managed add-ons ---------------------------

    def _eks_emulate(self, call: Call, operation: str, path: str, body: bytes) -> tuple[tuple[int, dict, bytes] | None, bytes]:
        handlers = {
            "DescribeClusterVersions": self._eks_describe_cluster_versions,
            "CreateCluster": self._eks_create_cluster,
            "UpdateClusterVersion": self._eks_update_cluster_version,
            "UpdateClusterConfig": self._eks_update_cluster_config,
            "DescribeUpdate": self._eks_describe_update,
            "ListUpdates": self._eks_list_updates,
            "CreateNodegroup": self._eks_create_nodegroup,
            "UpdateNodegroupVersion": self._eks_update_nodegroup_version,
            "UpdateNodegroupConfig": self._eks_update_nodegroup_config,
            "DescribeAddonVersions": self._eks_describe_addon_versions,
            "CreateAddon": self._eks_create_addon,
            "DescribeAddon": self._eks_describe_addon,
            "ListAddons": self._eks_list_addons,
            "UpdateAddon": self._eks_update_addon,
            "DeleteAddon": self._eks_delete_addon,
            "CreateAccessEntry": self._eks_create_access_entry,
            "ListAccessEntries": self._eks_list_access_entries,
            "DescribeAccessEntry": self._eks_describe_access_entry,
            "DeleteAccessEntry": self._eks_delete_access_entry,
            "AssociateAccessPolicy": self._eks_associate_access_policy,
            "ListAssociatedAccessPolicies": self._eks_list_associated_access_policies,
            "DisassociateAccessPolicy": self._eks_disassociate_access_policy,
        }
        handler = handlers.get(operation)
        if handler is None:
            return None, body
        route, _, query = path.partition("?")
        parts = [urllib.parse.unquote(p) for p in route.split("/") if p]
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = {}
        if not isinstance(request, dict):
            request = {}
        answer = handler(call.region, parts, urllib.parse.parse_qs(query), request)
        if isinstance(answer, dict):
            # The request as AWS completes it, for moto to store.
            return None, json.dumps(answer).encode()
        if answer is not None:
            with self._lock:
                self.counters.emulated += 1
        return answer, body

    def _eks_row(self, version: str | None) -> dict | None:
        return next((r for r in self.eks_versions if r["clusterVersion"] == version), None)

    @staticmethod
    def _eks_offered(row: dict | None) -> bool:
        return bool(row) and row.get("versionStatus") in ("STANDARD_SUPPORT", "EXTENDED_SUPPORT")

    def _eks_release_version(self, version: str) -> str:
        """The latest EKS optimized AMI release for a Kubernetes version."""
        row = self._eks_row(version) or {}
        if row.get("nodeReleaseVersion"):
            return row["nodeReleaseVersion"]
        return f"{row.get('kubernetesPatchVersion') or version + '.0'}-{EKS_AMI_RELEASE_DATE}"

    def _eks_cluster(self, region: str, name: str) -> dict | None:
        """The cluster as moto has it, or None."""
        try:
            return self._moto("eks", region).describe_cluster(name=name)["cluster"]
        except botocore.exceptions.ClientError:
            return None

    @staticmethod
    def _timestamp(value) -> float:
        if hasattr(value, "timestamp"):
            value = value.timestamp()
        try:
            return round(float(value), 3)
        except (TypeError, ValueError):
            return 0.0

    def _eks_state_locked(self, region: str, name: str, created) -> EksClusterState:
        """The proxy's state of a cluster (self._lock held); a cluster made
        since (another createdAt) starts afresh."""
        created = self._timestamp(created)
        state = self._eks.get((region, name))
        if state is None or state.created_at != created:
            state = self._eks[(region, name)] = EksClusterState(created_at=created)
        return state

    def _eks_complete_locked(self, state: EksClusterState, update: EksUpdate) -> None:
        update.status = "Successful"
        changes = update.changes
        if "clusterVersion" in changes:
            state.version = changes["clusterVersion"]
        if "authenticationMode" in changes:
            state.access_mode = changes["authenticationMode"]
            self._node_role_entries_locked(state)
        if "nodegroupVersion" in changes:
            state.nodegroups.setdefault(update.nodegroup, {}).update(
                version=changes["nodegroupVersion"], releaseVersion=changes["releaseVersion"])
        addon = state.addons.get(update.addon or "")
        if addon is not None and update.type == "AddonUpdate":
            for key in ("addonVersion", "serviceAccountRoleArn", "configurationValues"):
                if key in changes:
                    addon[key] = changes[key]
            addon["modifiedAt"] = time.time()

    def _eks_pending_locked(self, state: EksClusterState, nodegroup: str | None = None,
                            addon: str | None = None) -> EksUpdate | None:
        """The update still in progress on the cluster (or on one of its
        node groups or add-ons); one whose reads are over is done."""
        for update in state.updates.values():
            if update.status != "InProgress" or update.nodegroup != nodegroup or update.addon != addon:
                continue
            if update.reads_left <= 0:
                self._eks_complete_locked(state, update)
                continue
            return update
        return None

    def _eks_read_locked(self, state: EksClusterState, update: EksUpdate) -> None:
        """A status read of an update: one of its `update_reads`, or its end."""
        if update.status != "InProgress":
            return
        if update.reads_left <= 0:
            self._eks_complete_locked(state, update)
        else:
            update.reads_left -= 1

    def _eks_version_locked(self, state: EksClusterState, cluster: dict) -> str:
        self._eks_pending_locked(state)
        return state.version or cluster.get("version") or ""

    def _eks_new_update(self, state: EksClusterState, kind: str, params: list[dict], reads: int, **target) -> EksUpdate:
        update = EksUpdate(id=str(uuid.uuid4()), type=kind, params=params, created_at=time.time(),
                           reads_left=reads, nodegroup=target.pop("nodegroup", None),
                           addon=target.pop("addon", None), changes=target)
        state.updates[update.id] = update
        return update

    @staticmethod
    def _eks_no_cluster(name: str) -> tuple[int, dict, bytes]:
        return _eks_error(404, "ResourceNotFoundException", f"No cluster found for name: {name}.", cluster=name)

    @staticmethod
    def _eks_page(items: list, query: dict, names: str) -> tuple[list, str | None] | tuple[int, dict, bytes]:
        """One page (maxResults 1 to 100, 100 by default; an opaque
        nextToken), or the InvalidParameterException for a bad request."""
        text = (query.get("maxResults") or ["100"])[0]
        if not text.isdigit() or not 1 <= int(text) <= 100:
            return _eks_error(400, "InvalidParameterException", f"maxResults must be between 1 and 100 for {names}")
        start = _page_offset((query.get("nextToken") or [None])[0])
        if start is None:
            return _eks_error(400, "InvalidParameterException", "The nextToken is not valid")
        limit = int(text)
        page = items[start:start + limit]
        return page, (_page_token(start + limit) if start + limit < len(items) else None)

    def _eks_describe_cluster_versions(self, region, parts, query, request):
        """DescribeClusterVersions, GET /cluster-versions (EKS API
        Reference, DescribeClusterVersions): `clusterType`,
        `clusterVersions`, `defaultOnly`, `versionStatus` (or the deprecated
        `status`) filter; without `includeAll` only versions EKS offers (in
        standard or extended support, "You can create new Amazon EKS
        clusters on any version offered in standard or extended support",
        "Understand the Kubernetes version lifecycle on EKS") are listed.
        Assumptions: an explicit status filter reaches versions without
        `includeAll`, newest first, and `status` carries the same value as
        `versionStatus` (as in the User Guide's example output)."""
        def flag(name: str) -> bool:
            return (query.get(name) or ["false"])[0].lower() == "true"

        wanted_status = (query.get("versionStatus") or query.get("status") or [None])[0]
        if wanted_status:
            wanted_status = wanted_status.upper().replace("-", "_")
        rows = []
        for row in sorted(self.eks_versions, key=lambda r: _version_key(r["clusterVersion"]), reverse=True):
            status = row.get("versionStatus", "STANDARD_SUPPORT")
            if wanted_status and status != wanted_status:
                continue
            if not wanted_status and not flag("includeAll") and not self._eks_offered(row):
                continue
            if query.get("clusterType") and row.get("clusterType", "eks") not in query["clusterType"]:
                continue
            if query.get("clusterVersions") and row["clusterVersion"] not in query["clusterVersions"]:
                continue
            if flag("defaultOnly") and not row.get("defaultVersion"):
                continue
            rows.append(row)
        page = self._eks_page(rows, query, "DescribeClusterVersions")
        if not isinstance(page[0], list):
            return page
        rows, token = page
        versions = [{
            "clusterVersion": r["clusterVersion"],
            "clusterType": r.get("clusterType", "eks"),
            "defaultPlatformVersion": r["defaultPlatformVersion"],
            "defaultVersion": bool(r.get("defaultVersion")),
            "releaseDate": _epoch_day(r["releaseDate"]),
            "endOfStandardSupportDate": _epoch_day(r["endOfStandardSupportDate"]),
            "endOfExtendedSupportDate": _epoch_day(r["endOfExtendedSupportDate"]),
            "status": r.get("versionStatus", "STANDARD_SUPPORT"),
            "versionStatus": r.get("versionStatus", "STANDARD_SUPPORT"),
            "kubernetesPatchVersion": r["kubernetesPatchVersion"],
        } for r in rows]
        return _eks_json({"clusterVersions": versions, "nextToken": token})

    def _eks_create_cluster(self, region, parts, query, request):
        """CreateCluster: a version EKS does not offer is refused with
        InvalidParameterException "unsupported Kubernetes version" (AWS's
        answer, e.g. hashicorp/terraform-provider-aws#21410); without one
        "the default version available in Amazon EKS is used" (EKS API
        Reference, CreateCluster `version`; moto would use 1.19)."""
        version = request.get("version")
        name = request.get("name")
        if version and not self._eks_offered(self._eks_row(version)):
            return _eks_error(400, "InvalidParameterException", "unsupported Kubernetes version", cluster=name)
        if not version:
            default = next((r for r in self.eks_versions if r.get("defaultVersion")), None)
            if default:
                return {**request, "version": default["clusterVersion"]}
        return None

    def _eks_update_cluster_version(self, region, parts, query, request):
        """UpdateClusterVersion, POST /clusters/{name}/updates (EKS API
        Reference, UpdateClusterVersion; EKS User Guide, "Update existing
        cluster to new Kubernetes version"): the cluster must exist
        (ResourceNotFoundException) and have no update in progress
        (ResourceInUseException, "Cannot VersionUpdate because cluster ...
        currently has update ... in progress"); the version must be offered
        ("unsupported Kubernetes version") and the next minor one ("you can
        update only one minor version at a time"; AWS refuses anything else,
        the same one too, with "Unsupported Kubernetes minor version update
        from A to B"); "If your cluster has managed node groups attached to
        it, all of your node groups' Kubernetes versions must match the
        cluster's Kubernetes version in order to update the cluster" (the
        API reference; AWS's refusal: "Nodegroups X must be updated to match
        cluster version A before updating cluster version"). The cluster is
        UPDATING, the update InProgress, for `update_reads` status reads
        (DescribeUpdate or DescribeCluster), then the cluster is ACTIVE at
        the new version on the new version's platform version ("If you
        update your cluster to a new Kubernetes minor version, your cluster
        receives the current Amazon EKS platform version for the Kubernetes
        minor version that you updated to", "View Amazon EKS platform
        versions")."""
        name = parts[1]
        version = str(request.get("version") or "")
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        moto_eks = self._moto("eks", region)
        nodegroups = {}
        for group in moto_eks.list_nodegroups(clusterName=name).get("nodegroups", []):
            try:
                nodegroups[group] = moto_eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
            except botocore.exceptions.ClientError:
                continue
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            current = self._eks_version_locked(state, cluster)
            pending = self._eks_pending_locked(state)
            if pending:
                return _eks_error(409, "ResourceInUseException",
                                  f"Cannot VersionUpdate because cluster {name} currently has update {pending.id} in progress",
                                  cluster=name)
            row = self._eks_row(version)
            if not self._eks_offered(row):
                return _eks_error(400, "InvalidParameterException", "unsupported Kubernetes version", cluster=name)
            have, want = _version_key(current), _version_key(version)
            if len(have) < 2 or want[:1] != have[:1] or want[1:2] != (have[1] + 1,):
                return _eks_error(400, "InvalidParameterException",
                                  f"Unsupported Kubernetes minor version update from {current} to {version}", cluster=name)
            behind = sorted(
                group for group, ng in nodegroups.items()
                if _version_key(state.nodegroups.get(group, {}).get("version") or ng.get("version") or "")[:2] != have[:2]
            )
            if behind:
                return _eks_error(400, "InvalidParameterException",
                                  f"Nodegroups {', '.join(behind)} must be updated to match cluster version {current} "
                                  "before updating cluster version", cluster=name)
            update = self._eks_new_update(
                state, "VersionUpdate",
                [{"type": "Version", "value": version}, {"type": "PlatformVersion", "value": row["defaultPlatformVersion"]}],
                self.update_reads, clusterVersion=version)
            return _eks_json({"update": update.answer()})

    @staticmethod
    def _config_update_type(request: dict) -> str:
        """The update type of an UpdateClusterConfig request (EKS API
        Reference, Update `type`)."""
        if "logging" in request:
            return "LoggingUpdate"
        vpc = request.get("resourcesVpcConfig") or {}
        if vpc and set(vpc) <= {"endpointPublicAccess", "endpointPrivateAccess", "publicAccessCidrs"}:
            return "EndpointAccessUpdate"
        if vpc:
            return "VpcConfigUpdate"
        if "accessConfig" in request:
            return "AccessConfigUpdate"
        return "ConfigUpdate"

    @staticmethod
    def _config_update_params(request: dict) -> list[dict]:
        """The params of an UpdateClusterConfig update (EKS API Reference,
        UpdateParam `type`)."""
        params = []
        if "logging" in request:
            params.append({"type": "ClusterLogging", "value": json.dumps((request["logging"] or {}).get("clusterLogging", []))})
        names = {"endpointPublicAccess": "EndpointPublicAccess", "endpointPrivateAccess": "EndpointPrivateAccess",
                 "publicAccessCidrs": "PublicAccessCidrs", "subnetIds": "Subnets", "securityGroupIds": "SecurityGroups"}
        for key, value in (request.get("resourcesVpcConfig") or {}).items():
            if key in names:
                text = json.dumps(value) if isinstance(value, (list, dict)) else str(value).lower()
                params.append({"type": names[key], "value": text})
        if "accessConfig" in request:
            mode = (request["accessConfig"] or {}).get("authenticationMode")
            if mode:
                params.append({"type": "AuthenticationMode", "value": mode})
        return params

    def _eks_update_cluster_config(self, region, parts, query, request):
        """UpdateClusterConfig while another update runs is refused, as AWS
        does (ResourceInUseException, "Cannot EndpointAccessUpdate because
        cluster ... currently has update ... in progress"; EKS API
        Reference, UpdateClusterConfig Errors)."""
        name = parts[1]
        with self._lock:
            state = self._eks.get((region, name))
            pending = state and self._eks_pending_locked(state)
            if pending:
                return _eks_error(409, "ResourceInUseException",
                                  f"Cannot {self._config_update_type(request)} because cluster {name} currently has "
                                  f"update {pending.id} in progress", cluster=name)
        if "accessConfig" in request:
            return self._eks_update_access_config(region, name, request)
        return None

    # The authentication modes in the one order EKS moves a cluster through
    # them ("You can't change the authentication mode back", EKS User
    # Guide, "Change authentication mode to use access entries"; EKS API
    # Reference, UpdateAccessConfigRequest).
    ACCESS_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")

    def _eks_update_access_config(self, region, name, request):
        """UpdateClusterConfig with `accessConfig` (moto ignores it): the
        mode moves forward only, one kind of change per call ("You can't
        update more than one type of config at a time" — assumption: the
        wording); an update of type AccessConfigUpdate, InProgress for
        `update_reads` reads, then the cluster reports the new mode. On the
        way out of CONFIG_MAP, the managed node groups' roles get their
        EC2_LINUX entries (assumption: EKS does this as it does for a node
        group made later). Assumption: the refusal's wording."""
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        if set(request) - {"name", "accessConfig", "clientRequestToken"}:
            return _eks_error(400, "InvalidParameterException",
                              "Only one type of update can be allowed.", cluster=name)
        wanted = (request.get("accessConfig") or {}).get("authenticationMode")
        if wanted not in self.ACCESS_MODES:
            return _eks_error(400, "InvalidParameterException",
                              f"Unsupported authentication mode {wanted}", cluster=name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            have = state.access_mode
            if self.ACCESS_MODES.index(wanted) <= self.ACCESS_MODES.index(have):
                return _eks_error(400, "InvalidParameterException",
                                  f"Unsupported authentication mode update from {have} to {wanted}", cluster=name)
            update = self._eks_new_update(state, "AccessConfigUpdate",
                                          [{"type": "AuthenticationMode", "value": wanted}],
                                          self.update_reads, authenticationMode=wanted)
            return _eks_json({"update": update.answer()})

    def _eks_describe_update(self, region, parts, query, request):
        """DescribeUpdate, GET /clusters/{name}/updates/{id}: a node group's
        update needs `nodegroupName`, an add-on's `addonName` ("This
        parameter is required if the update is a node group update", EKS
        API Reference, DescribeUpdate). Each read is one of the update's
        `update_reads`. Assumption: the message of an unknown update."""
        name, ident = parts[1], parts[3]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        nodegroup = (query.get("nodegroupName") or [None])[0]
        addon = (query.get("addonName") or [None])[0]
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            update = state.updates.get(ident)
            if update is None or update.nodegroup != nodegroup or update.addon != addon:
                return _eks_error(404, "ResourceNotFoundException", f"No update found for ID: {ident}",
                                  cluster=name, nodegroup=nodegroup, addon=addon)
            self._eks_read_locked(state, update)
            return _eks_json({"update": update.answer()})

    def _eks_list_updates(self, region, parts, query, request):
        """ListUpdates, GET /clusters/{name}/updates: the ids of the
        cluster's updates, or of a node group's or add-on's."""
        name = parts[1]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        nodegroup = (query.get("nodegroupName") or [None])[0]
        addon = (query.get("addonName") or [None])[0]
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            ids = [u.id for u in state.updates.values() if u.nodegroup == nodegroup and u.addon == addon]
        page = self._eks_page(ids, query, "ListUpdates")
        if not isinstance(page[0], list):
            return page
        return _eks_json({"updateIds": page[0], "nextToken": page[1]})

    def _eks_release_refusal(self, version: str, release: str | None, name: str, group: str):
        """A releaseVersion EKS refuses: one of another Kubernetes version
        ("Requested release version R is not valid for kubernetes version
        V."), or not the latest ("Requested Nodegroup release version R is
        invalid. Allowed release version is L"); AWS's answers, e.g.
        crossplane-contrib/provider-aws#1601, hashicorp/terraform-provider-aws#14492.
        "By default, the latest available AMI version for the node group's
        current Kubernetes version is used" (EKS API Reference,
        CreateNodegroup and UpdateNodegroupVersion `releaseVersion`)."""
        if not release:
            return None
        if not release.startswith(version + "."):
            return _eks_error(400, "InvalidParameterException",
                              f"Requested release version {release} is not valid for kubernetes version {version}.",
                              cluster=name, nodegroup=group)
        latest = self._eks_release_version(version)
        if release != latest:
            return _eks_error(400, "InvalidParameterException",
                              f"Requested Nodegroup release version {release} is invalid. Allowed release version is {latest}",
                              cluster=name, nodegroup=group)
        return None

    def _eks_create_nodegroup(self, region, parts, query, request):
        """CreateNodegroup: "By default, the Kubernetes version of the
        cluster is used, and this is the only accepted specified value" and
        the latest AMI release of it (EKS API Reference, CreateNodegroup
        `version`, `releaseVersion`; moto would use 1.19). Assumption: the
        message refusing another version."""
        name = parts[1]
        group = request.get("nodegroupName")
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return None  # moto answers ResourceNotFoundException
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            current = self._eks_version_locked(state, cluster)
        version = str(request.get("version") or current)
        if _version_key(version)[:2] != _version_key(current)[:2]:
            return _eks_error(400, "InvalidParameterException",
                              f"Requested Nodegroup version {version} is invalid. Allowed version is {current}",
                              cluster=name, nodegroup=group)
        refusal = self._eks_release_refusal(current, request.get("releaseVersion"), name, group)
        if refusal:
            return refusal
        completed = {**request, "version": current}
        if not request.get("launchTemplate"):
            # (A launch template may carry an AMI of its own.)
            completed["releaseVersion"] = request.get("releaseVersion") or self._eks_release_version(current)
        return completed

    def _eks_update_nodegroup_version(self, region, parts, query, request):
        """UpdateNodegroupVersion, POST
        /clusters/{name}/node-groups/{ng}/update-version (EKS API Reference,
        UpdateNodegroupVersion; EKS User Guide, "Update a managed node group
        for your cluster"): the cluster and node group must exist
        (ResourceNotFoundException) and the node group have no update in
        progress (ResourceInUseException); without a version the node group
        goes to the cluster's ("If no version is specified, then the node
        group will be updated to match the cluster's current Kubernetes
        version, and the latest available AMI for that version will be
        used"); a version newer than the cluster's is refused ("A node's
        kubelet can't be newer than kube-apiserver", the User Guide's
        version skew; "You can update to the latest AMI version of your
        cluster's current Kubernetes version by specifying your cluster's
        Kubernetes version"), and so is an older one than the node group's
        ("You cannot roll back a node group to an earlier Kubernetes
        version or AMI version"); see `_eks_release_refusal` for
        releaseVersion. `force` and `launchTemplate` are taken and change
        nothing here. The node group is UPDATING, the update InProgress,
        for `update_reads` status reads (DescribeUpdate or
        DescribeNodegroup), then it reports the new version and release.
        Assumption: the message refusing the version."""
        name, group = parts[1], parts[3]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        try:
            nodegroup = self._moto("eks", region).describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
        except botocore.exceptions.ClientError:
            return _eks_error(404, "ResourceNotFoundException", f"No node group found for name: {group}.",
                              cluster=name, nodegroup=group)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            current = self._eks_version_locked(state, cluster)
            pending = self._eks_pending_locked(state, nodegroup=group)
            if pending:
                return _eks_error(409, "ResourceInUseException",
                                  f"Cannot VersionUpdate because nodegroup {group} currently has update {pending.id} in progress",
                                  cluster=name, nodegroup=group)
            have = state.nodegroups.get(group, {}).get("version") or nodegroup.get("version") or current
            version = str(request.get("version") or current)
            if not _version_key(have)[:2] <= _version_key(version)[:2] <= _version_key(current)[:2]:
                return _eks_error(400, "InvalidParameterException",
                                  f"Requested Nodegroup version {version} is invalid. Allowed version is {current}",
                                  cluster=name, nodegroup=group)
            refusal = self._eks_release_refusal(version, request.get("releaseVersion"), name, group)
            if refusal:
                return refusal
            release = request.get("releaseVersion") or self._eks_release_version(version)
            update = self._eks_new_update(
                state, "VersionUpdate",
                [{"type": "Version", "value": version}, {"type": "ReleaseVersion", "value": release}],
                self.update_reads, nodegroup=group, nodegroupVersion=version, releaseVersion=release)
            return _eks_json({"update": update.answer()})

    def _eks_update_nodegroup_config(self, region, parts, query, request):
        """UpdateNodegroupConfig while the node group's version update runs
        is refused (ResourceInUseException, EKS API Reference,
        UpdateNodegroupConfig Errors)."""
        name, group = parts[1], parts[3]
        with self._lock:
            state = self._eks.get((region, name))
            pending = state and self._eks_pending_locked(state, nodegroup=group)
            if pending:
                return _eks_error(409, "ResourceInUseException",
                                  f"Cannot ConfigUpdate because nodegroup {group} currently has update {pending.id} in progress",
                                  cluster=name, nodegroup=group)
        return None

    # -- EKS managed add-ons --------------------------------------------------------

    def _addon_versions(self, addon: str, cluster_version: str | None = None) -> list[dict]:
        """An add-on's versions, newest first (those for a cluster version)."""
        versions = (self.eks_addon_versions.get(addon) or {}).get("versions", [])
        found = [v for v in versions if cluster_version is None or cluster_version in v["clusterVersions"]]
        return sorted(found, key=lambda v: _version_key(v["addonVersion"]), reverse=True)

    def _addon_default(self, addon: str, cluster_version: str) -> str | None:
        return next((v["addonVersion"] for v in self._addon_versions(addon, cluster_version)
                     if cluster_version in v.get("defaultFor", [])), None)

    def _eks_describe_addon_versions(self, region, parts, query, request):
        """DescribeAddonVersions, GET /addons/supported-versions (EKS API
        Reference, DescribeAddonVersions): `kubernetesVersion`, `addonName`,
        `types`, `publishers`, `owners` filter; pages of add-ons. Each
        version lists the Kubernetes versions it is compatible with, one
        of them the default for each Kubernetes version. Assumptions: with
        `kubernetesVersion`, only that version's compatibility is listed;
        an unknown add-on gives an empty list."""
        kubernetes = (query.get("kubernetesVersion") or [None])[0]
        names = query.get("addonName") or sorted(self.eks_addon_versions)
        infos = []
        for name in names:
            catalogue = self.eks_addon_versions.get(name)
            if catalogue is None:
                continue
            if query.get("types") and catalogue.get("type", "networking") not in query["types"]:
                continue
            if query.get("publishers") and catalogue.get("publisher", "eks") not in query["publishers"]:
                continue
            if query.get("owners") and catalogue.get("owner", "aws") not in query["owners"]:
                continue
            versions = []
            for entry in self._addon_versions(name, kubernetes):
                clusters = [kubernetes] if kubernetes else entry["clusterVersions"]
                versions.append({
                    "addonVersion": entry["addonVersion"],
                    "architecture": ["amd64", "arm64"],
                    "computeTypes": ["ec2"],
                    "compatibilities": [
                        {"clusterVersion": c, "platformVersions": ["*"], "defaultVersion": c in entry.get("defaultFor", [])}
                        for c in clusters
                    ],
                    "requiresConfiguration": False,
                    "requiresIamPermissions": bool(catalogue.get("requiresIamPermissions")),
                })
            if versions:
                infos.append({"addonName": name, "type": catalogue.get("type", "networking"),
                              "addonVersions": versions, "publisher": catalogue.get("publisher", "eks"),
                              "owner": catalogue.get("owner", "aws")})
        page = self._eks_page(infos, query, "DescribeAddonVersions")
        if not isinstance(page[0], list):
            return page
        return _eks_json({"addons": page[0], "nextToken": page[1]})

    def _addon_view_locked(self, state: EksClusterState, name: str, read: bool) -> dict | None:
        """The add-on as EKS describes it now (None once deleted): CREATING
        or DELETING for `addon_reads` reads, UPDATING while an update runs."""
        addon = state.addons.get(name)
        if addon is None:
            return None
        left = state.addon_reads.get(name, 0)
        if addon["status"] in ("CREATING", "DELETING"):
            if left <= 0:
                if addon["status"] == "DELETING":
                    del state.addons[name]
                    state.addon_reads.pop(name, None)
                    return None
                addon["status"] = "ACTIVE"
            elif read:
                state.addon_reads[name] = left - 1
        pending = self._eks_pending_locked(state, addon=name)
        if pending and read:
            self._eks_read_locked(state, pending)
            pending = pending if pending.status == "InProgress" else None
        view = json.loads(json.dumps(addon))
        if pending and view["status"] == "ACTIVE":
            view["status"] = "UPDATING"
        return view

    @staticmethod
    def _no_addon(cluster: str, addon: str) -> tuple[int, dict, bytes]:
        # Assumption: the message (the code is ResourceNotFoundException,
        # EKS API Reference, DescribeAddon Errors).
        return _eks_error(404, "ResourceNotFoundException", f"No addon: {addon} found in cluster: {cluster}",
                          cluster=cluster, addon=addon)

    def _eks_create_addon(self, region, parts, query, request):
        """CreateAddon, POST /clusters/{name}/addons (EKS API Reference,
        CreateAddon; EKS User Guide, "Create an Amazon EKS add-on"): the
        cluster must exist (ResourceNotFoundException); the add-on must be
        one EKS offers ("Addon specified is not supported") and not be
        there yet (ResourceInUseException); its version "must match one of
        the versions returned by DescribeAddonVersions" for the cluster's
        Kubernetes version (InvalidParameterException "Addon version
        specified is not supported", AWS's answer, e.g.
        hashicorp/terraform-provider-aws#32238), the default one for it
        when left out. The add-on is CREATING for `addon_reads` reads, then
        ACTIVE; it keeps its tags, service account role and configuration
        values (which the proxy does not check against a schema).
        Assumption: the message of ResourceInUseException."""
        name = parts[1]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        addon_name = str(request.get("addonName") or "")
        if addon_name not in self.eks_addon_versions:
            return _eks_error(400, "InvalidParameterException", "Addon specified is not supported",
                              cluster=name, addon=addon_name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            version = self._eks_version_locked(state, cluster)
            if self._addon_view_locked(state, addon_name, read=False) is not None:
                return _eks_error(409, "ResourceInUseException", "Addon already exists.", cluster=name, addon=addon_name)
            wanted = request.get("addonVersion") or self._addon_default(addon_name, version)
            if wanted not in [v["addonVersion"] for v in self._addon_versions(addon_name, version)]:
                return _eks_error(400, "InvalidParameterException", "Addon version specified is not supported",
                                  cluster=name, addon=addon_name)
            account = cluster["arn"].split(":")[4]
            now = time.time()
            addon = {
                "addonName": addon_name, "clusterName": name, "status": "CREATING", "addonVersion": wanted,
                "health": {"issues": []},
                "addonArn": f"arn:aws:eks:{region}:{account}:addon/{name}/{addon_name}/{uuid.uuid4()}",
                "createdAt": now, "modifiedAt": now, "tags": dict(request.get("tags") or {}),
                "publisher": "eks", "owner": "aws",
            }
            for key in ("serviceAccountRoleArn", "configurationValues"):
                if request.get(key):
                    addon[key] = request[key]
            state.addons[addon_name] = addon
            state.addon_reads[addon_name] = self.addon_reads
            return _eks_json({"addon": json.loads(json.dumps(addon))})

    def _eks_describe_addon(self, region, parts, query, request):
        """DescribeAddon, GET /clusters/{name}/addons/{addon}: the add-on, or
        ResourceNotFoundException (404) once it is gone or never was."""
        name, addon_name = parts[1], parts[3]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            view = self._addon_view_locked(state, addon_name, read=True)
        if view is None:
            return self._no_addon(name, addon_name)
        return _eks_json({"addon": view})

    def _eks_list_addons(self, region, parts, query, request):
        """ListAddons, GET /clusters/{name}/addons: the names of the
        cluster's add-ons (EKS API Reference, ListAddons)."""
        name = parts[1]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            names = sorted(n for n in list(state.addons) if self._addon_view_locked(state, n, read=False) is not None)
        page = self._eks_page(names, query, "ListAddons")
        if not isinstance(page[0], list):
            return page
        return _eks_json({"addons": page[0], "nextToken": page[1]})

    def _eks_update_addon(self, region, parts, query, request):
        """UpdateAddon, POST /clusters/{name}/addons/{addon}/update (EKS API
        Reference, UpdateAddon; EKS User Guide, "Update an Amazon EKS
        add-on"): the add-on must exist (ResourceNotFoundException) and
        have no update in progress (ResourceInUseException); a version must
        be one DescribeAddonVersions lists for the cluster's current
        Kubernetes version ("Addon version specified is not supported").
        Answers an update of type AddonUpdate (DescribeUpdate with
        `addonName`); the add-on is UPDATING for `update_reads` reads, then
        ACTIVE with the new settings. Assumptions: the ResourceInUseException
        message; an add-on still CREATING is taken as created."""
        name, addon_name = parts[1], parts[3]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            view = self._addon_view_locked(state, addon_name, read=False)
            if view is None or view["status"] == "DELETING":
                return self._no_addon(name, addon_name)
            pending = self._eks_pending_locked(state, addon=addon_name)
            if pending:
                return _eks_error(409, "ResourceInUseException",
                                  f"Cannot AddonUpdate because addon {addon_name} currently has update {pending.id} in progress",
                                  cluster=name, addon=addon_name)
            version = self._eks_version_locked(state, cluster)
            wanted = request.get("addonVersion")
            if wanted and wanted not in [v["addonVersion"] for v in self._addon_versions(addon_name, version)]:
                return _eks_error(400, "InvalidParameterException", "Addon version specified is not supported",
                                  cluster=name, addon=addon_name)
            state.addons[addon_name]["status"] = "ACTIVE"
            params, changes = [], {}
            for key, kind in (("addonVersion", "AddonVersion"), ("serviceAccountRoleArn", "ServiceAccountRoleArn"),
                              ("resolveConflicts", "ResolveConflicts"), ("configurationValues", "ConfigurationValues")):
                if key in request and request[key] is not None:
                    params.append({"type": kind, "value": str(request[key])})
                    if key != "resolveConflicts":
                        changes[key] = request[key]
            update = self._eks_new_update(state, "AddonUpdate", params, self.update_reads, addon=addon_name, **changes)
            return _eks_json({"update": update.answer()})

    def _eks_delete_addon(self, region, parts, query, request):
        """DeleteAddon, DELETE /clusters/{name}/addons/{addon} (EKS API
        Reference, DeleteAddon): the add-on, DELETING for `addon_reads`
        reads, then gone (`preserve` keeps the software on the cluster,
        which changes nothing here)."""
        name, addon_name = parts[1], parts[3]
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return self._eks_no_cluster(name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            view = self._addon_view_locked(state, addon_name, read=False)
            if view is None:
                return self._no_addon(name, addon_name)
            for update in state.updates.values():
                if update.addon == addon_name and update.status == "InProgress":
                    update.status = "Cancelled"
            state.addons[addon_name]["status"] = "DELETING"
            state.addon_reads[addon_name] = self.addon_reads
            view["status"] = "DELETING"
            return _eks_json({"addon": view})

    # -- EKS: cluster access (access entries and access policies) -----------------------

    # The access policies EKS offers ("Access policy permissions", EKS User
    # Guide; ListAccessPolicies), by name.
    EKS_ACCESS_POLICIES = ("AmazonEKSAdminPolicy", "AmazonEKSClusterAdminPolicy", "AmazonEKSAdminViewPolicy",
                           "AmazonEKSEditPolicy", "AmazonEKSViewPolicy")
    ACCESS_ENTRY_TYPES = ("STANDARD", "EC2", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX")

    def _caller_arn(self, region: str) -> str | None:
        """The IAM principal that makes a call with the proxy's own
        credentials (the provider's are the same dummy ones): the cluster
        creator of a bootstrapped cluster. An assumed-role session is
        recorded as its role, as EKS does."""
        try:
            arn = self._moto("sts", region).get_caller_identity()["Arn"]
        except botocore.exceptions.ClientError:
            return None
        match = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", arn)
        if match:
            return f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
        return arn

    def _entry_locked(self, state: EksClusterState, cluster: dict, principal: str, kind: str,
                      created: float | None = None, tags: dict | None = None, username: str | None = None,
                      groups: list | None = None) -> dict:
        """A new access entry as EKS describes it (AccessEntry): a STANDARD
        one's username is the IAM user's ARN, or for a role the session ARN
        pattern `arn:aws:sts::<account>:assumed-role/<name>/{{SessionName}}`;
        a node role's EC2_LINUX entry is `system:node:{{EC2PrivateDNSName}}`
        in `system:nodes` ("Create access entries", EKS User Guide)."""
        parts = principal.split(":")
        account, resource = parts[4], parts[5]
        if kind == "STANDARD":
            default_user = principal
            if resource.startswith("role/"):
                default_user = f"arn:{parts[1]}:sts::{account}:assumed-role/{resource.rsplit('/', 1)[-1]}/{{{{SessionName}}}}"
            default_groups = []
        else:
            default_user, default_groups = "system:node:{{EC2PrivateDNSName}}", ["system:nodes"]
        region = cluster["arn"].split(":")[3]
        now = created if created is not None else time.time()
        entry = {
            "clusterName": cluster["name"], "principalArn": principal, "type": kind,
            "kubernetesGroups": list(groups if groups is not None else default_groups),
            "accessEntryArn": f"arn:{parts[1]}:eks:{region}:{cluster['arn'].split(':')[4]}:access-entry/"
                              f"{cluster['name']}/{resource.split('/', 1)[0]}/{account}/"
                              f"{resource.rsplit('/', 1)[-1]}/{uuid.uuid4()}",
            "createdAt": now, "modifiedAt": now, "tags": dict(tags or {}),
            "username": username or default_user, "policies": {},
        }
        state.access_entries[principal] = entry
        return entry

    def _eks_access_at_create_locked(self, state: EksClusterState, cluster: dict, access: dict,
                                     creator: str | None) -> None:
        """CreateCluster `accessConfig` (CreateAccessConfigRequest): "If you
        create a cluster by using the EKS API, AWS SDKs, or AWS
        CloudFormation, the default is CONFIG_MAP"; the creator's admin
        entry (`bootstrapClusterCreatorAdminPermissions`, "The default value
        is true"): a STANDARD entry with AmazonEKSClusterAdminPolicy at
        cluster scope, made with the cluster, where the mode allows access
        entries."""
        state.cluster_ref = {"name": cluster["name"], "arn": cluster["arn"]}
        state.access_mode = access.get("authenticationMode") or "CONFIG_MAP"
        state.bootstrap_creator = bool(access.get("bootstrapClusterCreatorAdminPermissions", True))
        state.access_entries.clear()
        if state.bootstrap_creator and creator and state.access_mode != "CONFIG_MAP":
            created = self._timestamp(cluster.get("createdAt")) or time.time()
            entry = self._entry_locked(state, cluster, creator, "STANDARD", created=created)
            partition = cluster["arn"].split(":")[1]
            entry["policies"][f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"] = {
                "accessScope": {"type": "cluster", "namespaces": []}, "associatedAt": created, "modifiedAt": created}

    def _node_role_entries_locked(self, state: EksClusterState) -> None:
        """"When the authentication mode of your cluster is API or
        API_AND_CONFIG_MAP, Amazon EKS creates access entries for the IAM
        roles of managed node groups" of type EC2_LINUX ("Create access
        entries", EKS User Guide; assumption: also when a cluster leaves
        CONFIG_MAP with node groups already there)."""
        if state.access_mode == "CONFIG_MAP" or not state.cluster_ref:
            return
        for role in sorted(state.node_roles):
            if role not in state.access_entries:
                self._entry_locked(state, state.cluster_ref, role, "EC2_LINUX")

    def _access_cluster(self, region: str, name: str):
        """The cluster and its state, or the error EKS answers: no cluster
        (ResourceNotFoundException), or a cluster in CONFIG_MAP mode
        (InvalidRequestException: "The cluster's authentication mode must be
        set to one of [API, API_AND_CONFIG_MAP] to perform this operation",
        EKS User Guide, "Change authentication mode to use access
        entries"; assumption: the wording)."""
        cluster = self._eks_cluster(region, name)
        if cluster is None:
            return None, None, self._eks_no_cluster(name)
        with self._lock:
            state = self._eks_state_locked(region, name, cluster.get("createdAt"))
            self._eks_pending_locked(state)
            mode = state.access_mode
        if mode == "CONFIG_MAP":
            return None, None, _eks_error(
                400, "InvalidRequestException",
                "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
                cluster=name)
        return cluster, state, None

    @staticmethod
    def _no_entry(name: str) -> tuple[int, dict, bytes]:
        # ResourceNotFoundException (EKS API Reference, DescribeAccessEntry
        # Errors). Assumption: the wording.
        return _eks_error(404, "ResourceNotFoundException",
                          "The specified access entry resource could not be found.", cluster=name)

    @staticmethod
    def _entry_view(entry: dict) -> dict:
        return {k: v for k, v in entry.items() if k != "policies"}

    def _eks_create_access_entry(self, region, parts, query, request):
        """CreateAccessEntry, POST /clusters/{name}/access-entries (EKS API
        Reference, CreateAccessEntry): one entry per principal
        (ResourceInUseException); `type` STANDARD by default, one of the
        listed types; "You can't use the STS session principal type"
        (InvalidParameterException); node types take only IAM roles of the
        cluster's account. Assumptions: the wording of the refusals; the
        principal is not checked against IAM."""
        name = parts[1]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        principal = str(request.get("principalArn") or "")
        kind = str(request.get("type") or "STANDARD")
        if kind not in self.ACCESS_ENTRY_TYPES:
            return _eks_error(400, "InvalidParameterException", f"The type {kind} is not valid.", cluster=name)
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+", principal):
            return _eks_error(400, "InvalidParameterException",
                              f"The specified principalArn is invalid: {principal}", cluster=name)
        if kind != "STANDARD" and (":role/" not in principal or principal.split(":")[4] != cluster["arn"].split(":")[4]):
            return _eks_error(400, "InvalidParameterException",
                              f"The specified principalArn is invalid for type {kind}: {principal}", cluster=name)
        with self._lock:
            if principal in state.access_entries:
                return _eks_error(409, "ResourceInUseException",
                                  "The specified access entry resource is already in use on this cluster.", cluster=name)
            entry = self._entry_locked(state, cluster, principal, kind, tags=request.get("tags"),
                                       username=request.get("username"), groups=request.get("kubernetesGroups"))
            return _eks_json({"accessEntry": self._entry_view(entry)})

    def _eks_list_access_entries(self, region, parts, query, request):
        """ListAccessEntries, GET /clusters/{name}/access-entries: the
        principal ARNs, filtered by `associatedPolicyArn`, in pages."""
        name = parts[1]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        policy = (query.get("associatedPolicyArn") or [None])[0]
        with self._lock:
            principals = sorted(p for p, e in state.access_entries.items() if not policy or policy in e["policies"])
        page = self._eks_page(principals, query, "ListAccessEntries")
        if not isinstance(page[0], list):
            return page
        return _eks_json({"accessEntries": page[0], "nextToken": page[1]})

    def _eks_describe_access_entry(self, region, parts, query, request):
        """DescribeAccessEntry, GET /clusters/{name}/access-entries/{principalArn}."""
        name, principal = parts[1], parts[3]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        with self._lock:
            entry = state.access_entries.get(principal)
            if entry is None:
                return self._no_entry(name)
            return _eks_json({"accessEntry": self._entry_view(entry)})

    def _eks_delete_access_entry(self, region, parts, query, request):
        """DeleteAccessEntry: the entry and its policy associations go
        ("Deleting an access entry removes ... the access policies
        associated with it", EKS API Reference, DeleteAccessEntry)."""
        name, principal = parts[1], parts[3]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        with self._lock:
            if state.access_entries.pop(principal, None) is None:
                return self._no_entry(name)
        return _eks_json({})

    def _eks_associate_access_policy(self, region, parts, query, request):
        """AssociateAccessPolicy, POST .../access-entries/{principalArn}/access-policies
        (EKS API Reference): the entry must exist (ResourceNotFoundException)
        and be STANDARD ("You can only associate access policies with
        access entries of type STANDARD" — assumption: wording); the policy
        one EKS offers; `accessScope.type` cluster or namespace (namespace
        scope needs namespaces). Associating a policy again replaces its
        scope."""
        name, principal = parts[1], parts[3]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        policy = str(request.get("policyArn") or "")
        scope = request.get("accessScope") or {}
        partition = cluster["arn"].split(":")[1]
        offered = [f"arn:{partition}:eks::aws:cluster-access-policy/{p}" for p in self.EKS_ACCESS_POLICIES]
        if policy not in offered:
            return _eks_error(400, "InvalidParameterException", f"The policy {policy} is not valid.", cluster=name)
        if scope.get("type") not in ("cluster", "namespace") or \
                (scope.get("type") == "namespace" and not scope.get("namespaces")):
            return _eks_error(400, "InvalidParameterException", "The accessScope is not valid.", cluster=name)
        with self._lock:
            entry = state.access_entries.get(principal)
            if entry is None:
                return self._no_entry(name)
            if entry["type"] != "STANDARD":
                return _eks_error(400, "InvalidRequestException",
                                  "You can only associate access policies with access entries of type STANDARD.",
                                  cluster=name)
            now = time.time()
            before = entry["policies"].get(policy, {})
            entry["policies"][policy] = {
                "accessScope": {"type": scope["type"], "namespaces": list(scope.get("namespaces") or [])},
                "associatedAt": before.get("associatedAt", now), "modifiedAt": now}
            view = {"policyArn": policy, **entry["policies"][policy]}
        return _eks_json({"clusterName": name, "principalArn": principal, "associatedAccessPolicy": view})

    def _eks_list_associated_access_policies(self, region, parts, query, request):
        """ListAssociatedAccessPolicies: the entry's policies with their scopes."""
        name, principal = parts[1], parts[3]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        with self._lock:
            entry = state.access_entries.get(principal)
            if entry is None:
                return self._no_entry(name)
            views = [{"policyArn": p, **a} for p, a in sorted(entry["policies"].items())]
        page = self._eks_page(views, query, "ListAssociatedAccessPolicies")
        if not isinstance(page[0], list):
            return page
        return _eks_json({"clusterName": name, "principalArn": principal,
                          "associatedAccessPolicies": page[0], "nextToken": page[1]})

    def _eks_disassociate_access_policy(self, region, parts, query, request):
        """DisassociateAccessPolicy, DELETE .../access-policies/{policyArn}:
        ResourceNotFoundException when it is not associated."""
        name, principal, policy = parts[1], parts[3], parts[5]
        cluster, state, error = self._access_cluster(region, name)
        if error:
            return error
        with self._lock:
            entry = state.access_entries.get(principal)
            if entry is None or entry["policies"].pop(policy, None) is None:
                return self._no_entry(name)
        return _eks_json({})

    # -- CloudFront: S3 origins with an Origin Access Control ---------------------------

    CLOUDFRONT_NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"

    def _cloudfront_origins(self, xml: bytes) -> dict[str, dict]:
        """The S3 origins of a DistributionConfig (request or answer): per
        origin id, its S3OriginConfig identity and OriginAccessControlId."""
        import xml.etree.ElementTree as ET
        ns = {"cf": self.CLOUDFRONT_NS}
        try:
            root = ET.fromstring(xml)
        except ET.ParseError:
            return {}
        found = {}
        for origin in root.iter(f"{{{self.CLOUDFRONT_NS}}}Origin"):
            ident = origin.findtext("cf:Id", default="", namespaces=ns)
            s3 = origin.find("cf:S3OriginConfig", ns)
            oac = origin.findtext("cf:OriginAccessControlId", default="", namespaces=ns)
            if s3 is not None or oac:
                found[ident] = {"identity": None if s3 is None else s3.findtext(
                    "cf:OriginAccessIdentity", default="", namespaces=ns), "oac": oac}
        return found

    def _cloudfront_view(self, payload: bytes, origins_of) -> bytes:
        """An answer with what moto drops put back: each S3 origin's
        S3OriginConfig and OriginAccessControlId (Origin, CloudFront API
        Reference), and a ViewerCertificate with an ACM certificate saying
        so (`CloudFrontDefaultCertificate` false, `CertificateSource` acm;
        moto keeps both)."""
        import xml.etree.ElementTree as ET
        ET.register_namespace("", self.CLOUDFRONT_NS)
        ns = {"cf": self.CLOUDFRONT_NS}
        try:
            root = ET.fromstring(payload)
        except ET.ParseError:
            return payload
        changed = False
        holders = [root] if root.find("cf:Origins", ns) is not None or root.tag.endswith("DistributionConfig") else []
        holders += list(root.iter(f"{{{self.CLOUDFRONT_NS}}}DistributionConfig"))
        holders += list(root.iter(f"{{{self.CLOUDFRONT_NS}}}DistributionSummary"))
        if root.tag.endswith("}Distribution"):
            holders.append(root)
        for holder in holders:
            ident = holder.findtext("cf:Id", default="", namespaces=ns) or root.findtext("cf:Id", default="", namespaces=ns)
            origins = origins_of(ident)
            for origin in holder.findall("cf:Origins/cf:Items/cf:Origin", ns):
                kept = origins.get(origin.findtext("cf:Id", default="", namespaces=ns))
                if not kept:
                    continue
                if kept["identity"] is not None and origin.find("cf:S3OriginConfig", ns) is None:
                    s3 = ET.SubElement(origin, f"{{{self.CLOUDFRONT_NS}}}S3OriginConfig")
                    ET.SubElement(s3, f"{{{self.CLOUDFRONT_NS}}}OriginAccessIdentity").text = kept["identity"]
                    changed = True
                if kept["oac"] and origin.find("cf:OriginAccessControlId", ns) is None:
                    ET.SubElement(origin, f"{{{self.CLOUDFRONT_NS}}}OriginAccessControlId").text = kept["oac"]
                    changed = True
            cert = holder.find("cf:ViewerCertificate", ns)
            if cert is not None and cert.findtext("cf:ACMCertificateArn", default="", namespaces=ns):
                for tag, value in (("CloudFrontDefaultCertificate", "false"), ("CertificateSource", "acm")):
                    element = cert.find(f"cf:{tag}", ns)
                    if element is not None and element.text != value:
                        element.text = value
                        changed = True
        if not changed:
            return payload
        return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root)

    def _cloudfront_oac_refusal(self, call: Call, method: str, path: str, body: bytes):
        """CreateDistribution/UpdateDistribution naming an Origin Access
        Control that does not exist is refused (NoSuchOriginAccessControl,
        404); CreateOriginAccessControl of a name that exists is refused
        (OriginAccessControlAlreadyExists, 409); DeleteOriginAccessControl while a distribution's origin uses
        it is refused (OriginAccessControlInUse, 409) (CloudFront API
        Reference, each operation's Errors). Assumption: the messages."""
        route = path.split("?")[0]
        def error(status, code, message):
            return status, {"Content-Type": "text/xml"}, (
                f'<?xml version="1.0"?><ErrorResponse xmlns="{self.CLOUDFRONT_NS}"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
        cf = self._moto("cloudfront", "us-east-1")
        if (method == "POST" and re.match(r"^/[^/]+/distribution/?$", route)) or \
                (method == "PUT" and re.match(r"^/[^/]+/distribution/[^/]+/config/?$", route)):
            wanted = {o["oac"] for o in self._cloudfront_origins(body).values() if o["oac"]}
            if wanted:
                known = {c["Id"] for c in cf.list_origin_access_controls()["OriginAccessControlList"].get("Items", [])}
                missing = sorted(wanted - known)
                if missing:
                    return error(404, "NoSuchOriginAccessControl", f"The origin access control {missing[0]} does not exist.")
        if method == "POST" and re.match(r"^/[^/]+/origin-access-control/?$", route):
            # Names are unique: "An origin access control with the
            # specified parameters already exists" (OriginAccessControlAlreadyExists,
            # 409; CloudFront API Reference, CreateOriginAccessControl,
            # Errors). moto makes a second one, so a create repeated after a
            # lost answer would leave two.
            name = re.search(rb"<Name>([^<]*)</Name>", body or b"")
            items = cf.list_origin_access_controls()["OriginAccessControlList"].get("Items", [])
            if name and any(c["Name"] == name[1].decode() for c in items):
                with self._lock:
                    self.counters.emulated += 1
                return error(409, "OriginAccessControlAlreadyExists",
                             f"An origin access control with the name {name[1].decode()} already exists.")
        match = re.match(r"^/[^/]+/origin-access-control/([^/]+)/?$", route)
        if method == "DELETE" and match:
            with self._lock:
                users = [d for d, origins in self._cloudfront_s3_origins.items()
                         if any(o["oac"] == match[1] for o in origins.values())]
            if users:
                return error(409, "OriginAccessControlInUse",
                             f"The origin access control is in use by the distribution {users[0]}.")
        return None

    def _cloudfront_after(self, call: Call, method: str, path: str, body: bytes, status: int, payload: bytes) -> bytes:
        if call.service != "cloudfront" or not 200 <= status < 300:  # DeleteDistribution answers 204
            return payload
        route = path.split("?")[0]
        created = method == "POST" and re.match(r"^/[^/]+/distribution/?$", route)
        updated = method == "PUT" and re.match(r"^/[^/]+/distribution/([^/]+)/config/?$", route)
        if created or updated:
            ident = updated[1] if updated else (re.search(rb"<Id>([^<]+)</Id>", payload) or [b"", b""])[1].decode()
            with self._lock:
                self._cloudfront_s3_origins[ident] = self._cloudfront_origins(body)
        deleted = method == "DELETE" and re.match(r"^/[^/]+/distribution/([^/]+)/?$", route)
        if deleted:
            with self._lock:
                self._cloudfront_s3_origins.pop(deleted[1], None)
            return payload
        if method in ("GET", "POST", "PUT"):
            with self._lock:
                kept = {k: dict(v) for k, v in self._cloudfront_s3_origins.items()}
            if not kept:
                return payload
            single = re.match(r"^/[^/]+/distribution/([^/]+)", route)
            fallback = single[1] if single else ""
            return self._cloudfront_view(payload, lambda ident: kept.get(ident or fallback, {}))
        return payload

    def _eks_after(self, call: Call, operation: str, path: str, body: bytes, status: int, payload: bytes) -> bytes:
        """moto's EKS answers as AWS gives them: a cluster's version and
        platform version after an update, UPDATING meanwhile; a node
        group's the same; an update for UpdateClusterConfig (moto answers
        the cluster); updates moto made findable with DescribeUpdate; what
        the proxy keeps of a cluster goes with it."""
        if call.service != "eks" or status != 200:
            return payload
        parts = [urllib.parse.unquote(p) for p in path.split("?")[0].split("/") if p]
        try:
            answer = json.loads(payload)
        except ValueError:
            return payload
        region = call.region
        if operation == "CreateCluster" and isinstance(answer.get("cluster"), dict):
            cluster = answer["cluster"]
            access = json.loads(body or b"{}").get("accessConfig") or {}
            creator = self._caller_arn(region) if access.get("bootstrapClusterCreatorAdminPermissions", True) else None
            with self._lock:
                self._eks.pop((region, cluster.get("name")), None)
                state = self._eks_state_locked(region, cluster.get("name"), cluster.get("createdAt"))
                self._eks_access_at_create_locked(state, cluster, access, creator)
            self._eks_cluster_view(cluster, state)
            return json.dumps(answer).encode()
        if operation == "DeleteCluster" and len(parts) >= 2:
            with self._lock:
                self._eks.pop((region, parts[1]), None)
            return payload
        if operation == "DescribeCluster" and isinstance(answer.get("cluster"), dict):
            cluster = answer["cluster"]
            with self._lock:
                state = self._eks_state_locked(region, parts[1], cluster.get("createdAt"))
                pending = self._eks_pending_locked(state)
                if pending:
                    self._eks_read_locked(state, pending)
                    pending = pending if pending.status == "InProgress" else None
                self._eks_cluster_view(cluster, state)
                if pending and cluster.get("status") == "ACTIVE":
                    cluster["status"] = "UPDATING"
            return json.dumps(answer).encode()
        if operation in ("CreateNodegroup", "DeleteNodegroup") and len(parts) >= 3:
            group = parts[3] if len(parts) >= 4 else json.loads(body or b"{}").get("nodegroupName")
            with self._lock:
                state = self._eks.get((region, parts[1]))
                if state:
                    state.nodegroups.pop(group, None)
                    role = json.loads(body or b"{}").get("nodeRole") if operation == "CreateNodegroup" else None
                    if role:
                        state.node_roles.add(role)
                        self._node_role_entries_locked(state)
            return payload
        if operation == "DescribeNodegroup" and isinstance(answer.get("nodegroup"), dict):
            nodegroup = answer["nodegroup"]
            with self._lock:
                state = self._eks.get((region, parts[1]))
                if state is None:
                    return payload
                pending = self._eks_pending_locked(state, nodegroup=parts[3])
                if pending:
                    self._eks_read_locked(state, pending)
                    pending = pending if pending.status == "InProgress" else None
                nodegroup.update(state.nodegroups.get(parts[3], {}))
                if pending and nodegroup.get("status") == "ACTIVE":
                    nodegroup["status"] = "UPDATING"
            return json.dumps(answer).encode()
        if operation in ("UpdateClusterConfig", "UpdateNodegroupConfig"):
            # moto applies the change at once: the update AWS would report
            # is done by the first look at it.
            request = json.loads(body or b"{}")
            update = answer.get("update") if isinstance(answer.get("update"), dict) else None
            cluster = self._eks_cluster(region, parts[1])
            if cluster is None:
                return payload
            with self._lock:
                state = self._eks_state_locked(region, parts[1], cluster.get("createdAt"))
                if update is None:
                    params = self._config_update_params(request)
                    made = self._eks_new_update(state, self._config_update_type(request), params, 0)
                    return json.dumps({"update": made.answer()}).encode()
                state.updates[update["id"]] = EksUpdate(
                    id=update["id"], type=update.get("type", "ConfigUpdate"), params=update.get("params", []),
                    created_at=self._timestamp(update.get("createdAt")) or time.time(), reads_left=0,
                    nodegroup=parts[3] if len(parts) >= 4 else None, status=update.get("status", "Successful"))
            return payload
        return payload

    def _eks_cluster_view(self, cluster: dict, state: EksClusterState | None) -> None:
        """A cluster's version after the proxy's updates, and the platform
        version EKS gives that version ("Clusters are always created with
        the latest available Amazon EKS platform version", "View Amazon EKS
        platform versions"; moto says eks.4). Every cluster has an OIDC
        issuer of its own, `https://oidc.eks.<region>.amazonaws.com/id/<id>`
        ("Each cluster has an OpenID Connect (OIDC) issuer URL associated
        with it", EKS User Guide, "Create an IAM OIDC provider for your
        cluster"; DescribeCluster `identity.oidc.issuer`): moto gives every
        cluster of a server the same one. Assumption: the id is 32
        uppercase hex digits (the User Guide's examples)."""
        if state is not None and state.version:
            cluster["version"] = state.version
        if state is not None:
            # DescribeCluster `accessConfig` (AccessConfigResponse).
            cluster["accessConfig"] = {"authenticationMode": state.access_mode,
                                       "bootstrapClusterCreatorAdminPermissions": state.bootstrap_creator}
        if state is not None:
            region = str(cluster.get("arn", "")).split(":")[3:4] or ["us-east-1"]
            cluster["identity"] = {"oidc": {
                "issuer": f"https://oidc.eks.{region[0]}.amazonaws.com/id/{state.issuer_id}"}}
        row = self._eks_row(cluster.get("version"))
        if row:
            cluster["platformVersion"] = row["defaultPlatformVersion"]

    # -- RDS engine versions and engine upgrades ------------------------------------

    def _rds(self, call: Call, body: bytes) -> tuple[tuple[int, dict, bytes] | None, bytes]:
        refusal = self._drill_request(call)
        if refusal:
            return refusal, body
        if call.action == "DescribeDBEngineVersions":
            with self._lock:
                self.counters.emulated += 1
            return self._describe_db_engine_versions(call.params), body
        if call.action == "ModifyDBInstance":
            return self._modify_db_instance(call, body)
        if call.action in ("CreateDBInstance", "CreateDBInstanceReadReplica") and call.params.get("DBParameterGroupName"):
            self._db_group_family(call.region, call.params["DBParameterGroupName"])
        return None, body

    def _db_rows(self, engine: str) -> list[dict]:
        return sorted((r for r in self.db_engine_versions if r["Engine"] == engine),
                      key=lambda r: _version_key(r["EngineVersion"]))

    def _db_default(self, engine: str, major: str | None = None) -> str | None:
        """The default version of an engine, or of one of its major
        versions: the row marked `Default`, else the newest (of the newest
        major, for the engine's)."""
        rows = self._db_rows(engine)
        if major is None:
            if not rows:
                return None
            major = _major(rows[-1]["EngineVersion"])
        rows = [r for r in rows if _major(r["EngineVersion"]) == major]
        marked = [r for r in rows if r.get("Default")]
        return (marked or rows or [{}])[-1].get("EngineVersion")

    def _db_targets(self, row: dict) -> list[dict]:
        rows = self._db_rows(row["Engine"])
        if "ValidUpgradeTarget" in row:
            return [r for r in rows if r["EngineVersion"] in row["ValidUpgradeTarget"]]
        return [r for r in rows if _version_key(r["EngineVersion"]) > _version_key(row["EngineVersion"])]

    def _db_family(self, engine: str, version: str) -> str:
        row = next((r for r in self.db_engine_versions if r["Engine"] == engine and r["EngineVersion"] == version), None)
        return row["DBParameterGroupFamily"] if row else f"{engine}{_major(version)}"

    def _describe_db_engine_versions(self, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """DescribeDBEngineVersions (RDS API Reference): `Engine`,
        `EngineVersion` (see `_version_matches`), `DBParameterGroupFamily`,
        the `engine`, `engine-version`, `db-parameter-group-family` and
        `status` filters; `DefaultOnly` keeps "the default version of the
        specified engine or the engine and major version combination";
        `MaxRecords` (20 to 100) and `Marker` page. Each version lists the
        versions it can be upgraded to (`ValidUpgradeTarget`). Assumptions:
        the descriptions ("PostgreSQL 16.8-R1"), AutoUpgrade (true for the
        default minor of the same major) and the Marker's message."""
        limit = _max_records(params)
        if isinstance(limit, str):
            return _query_error("InvalidParameterValue", limit, 400, RDS_NS)
        start = _page_offset(params.get("Marker"))
        if start is None:
            return _query_error("InvalidParameterValue", "The marker is not valid", 400, RDS_NS)
        filters = _query_filters(params)
        engines = [params["Engine"]] if params.get("Engine") else filters.get("engine")
        versions = [params["EngineVersion"]] if params.get("EngineVersion") else filters.get("engine-version")
        families = [params["DBParameterGroupFamily"]] if params.get("DBParameterGroupFamily") else filters.get("db-parameter-group-family")
        rows = []
        for row in sorted(self.db_engine_versions, key=lambda r: (r["Engine"], _version_key(r["EngineVersion"]))):
            if engines and row["Engine"] not in engines:
                continue
            if versions and not any(_version_matches(v, row["EngineVersion"]) for v in versions):
                continue
            if families and row["DBParameterGroupFamily"] not in families:
                continue
            if filters.get("status") and row.get("Status", "available") not in filters["status"]:
                continue
            rows.append(row)
        if params.get("DefaultOnly", "false").lower() == "true":
            per_major = bool(versions or families)
            rows = [r for r in rows if r["EngineVersion"] == self._db_default(
                r["Engine"], _major(r["EngineVersion"]) if per_major else None)]
        page = rows[start:start + limit]
        items = []
        for row in page:
            engine_name = row.get("DBEngineDescription") or {"postgres": "PostgreSQL", "mysql": "MySQL"}.get(row["Engine"], row["Engine"])
            default = self._db_default(row["Engine"], _major(row["EngineVersion"]))
            targets = "".join(
                "<UpgradeTarget>" + _xml("Engine", t["Engine"]) + _xml("EngineVersion", t["EngineVersion"])
                + _xml("Description", t.get("DBEngineVersionDescription") or f"{engine_name} {t['EngineVersion']}-R1")
                + _xml("AutoUpgrade", _major(t["EngineVersion"]) == _major(row["EngineVersion"]) and t["EngineVersion"] == default)
                + _xml("IsMajorVersionUpgrade", _major(t["EngineVersion"]) != _major(row["EngineVersion"]))
                + "</UpgradeTarget>"
                for t in self._db_targets(row)
            )
            items.append(
                "<DBEngineVersion>" + _xml("Engine", row["Engine"]) + _xml("MajorEngineVersion", _major(row["EngineVersion"]))
                + _xml("EngineVersion", row["EngineVersion"]) + _xml("DBParameterGroupFamily", row["DBParameterGroupFamily"])
                + _xml("DBEngineDescription", engine_name)
                + _xml("DBEngineVersionDescription", row.get("DBEngineVersionDescription") or f"{engine_name} {row['EngineVersion']}-R1")
                + f"<ValidUpgradeTarget>{targets}</ValidUpgradeTarget>"
                + _xml("SupportsReadReplica", True) + _xml("Status", row.get("Status", "available"))
                + "</DBEngineVersion>"
            )
        marker = _xml("Marker", _page_token(start + limit)) if start + limit < len(rows) else ""
        return _query_answer("DescribeDBEngineVersions", f"<DBEngineVersions>{''.join(items)}</DBEngineVersions>{marker}", RDS_NS)

    def _db_group_family(self, region: str, group: str) -> str | None:
        """The family of a DB parameter group, None when it does not exist.
        AWS has a default group (`default.<family>`) for every family; moto
        makes one only when an instance of that version first asks for it,
        so the proxy makes those of the families in `db_engine_versions`."""
        rds = self._moto("rds", region)
        try:
            found = rds.describe_db_parameter_groups(DBParameterGroupName=group)["DBParameterGroups"]
            if found:
                return found[0]["DBParameterGroupFamily"]
        except botocore.exceptions.ClientError:
            pass
        family = group[len("default."):] if group.startswith("default.") else None
        if family not in {r["DBParameterGroupFamily"] for r in self.db_engine_versions}:
            return None
        try:
            rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily=family,
                                          Description=f"Default parameter group for {family}")
        except botocore.exceptions.ClientError:
            pass
        return family

    def _modify_db_instance(self, call: Call, body: bytes) -> tuple[tuple[int, dict, bytes] | None, bytes]:
        """ModifyDBInstance's engine version and parameter group, as RDS
        checks them (RDS API Reference, ModifyDBInstance `EngineVersion`,
        `AllowMajorVersionUpgrade`, `DBParameterGroupName`; RDS User Guide,
        "Upgrades of the RDS for PostgreSQL DB engine" and "How to perform a
        major version upgrade for RDS for PostgreSQL"); moto takes any:
        - a version RDS does not have: InvalidParameterCombination "Cannot
          find version V for postgres"; an older one, or one not among the
          current version's upgrade targets: "Cannot upgrade postgres from A
          to B" (AWS's messages);
        - "If you specify only a major version, Amazon RDS updates the DB
          instance to the default minor version if the current minor version
          is lower" (moto would store "17");
        - "Major version upgrades must be allowed when specifying a value
          for the EngineVersion parameter that's a different major version
          than the DB instance's current version": InvalidParameterCombination
          "The AllowMajorVersionUpgrade flag must be present when upgrading
          to a new major version.";
        - the parameter group "Must be in the same DB parameter group family
          as the DB instance" (of the new version's family in an upgrade),
          and "For major version upgrades, if a nondefault DB parameter group
          is currently in use, a new DB parameter group in the DB parameter
          group family for the new engine version must be specified":
          InvalidParameterCombination "The parameter group G with
          DBParameterGroupFamily F can't be used for this instance. Use a
          parameter group with DBParameterGroupFamily N." (AWS's message).
        Not emulated: without ApplyImmediately RDS waits for the maintenance
        window (moto applies at once)."""
        params = dict(call.params)
        ident = params.get("DBInstanceIdentifier", "")
        asked = params.get("EngineVersion")
        group = params.get("DBParameterGroupName")
        if not asked and not group:
            return None, body
        try:
            db = self._moto("rds", call.region).describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except botocore.exceptions.ClientError:
            return None, body  # moto answers DBInstanceNotFound
        engine, current = db.get("Engine", ""), db.get("EngineVersion", "")
        rows = self._db_rows(engine)
        if not rows:
            return None, body

        def refuse(message: str) -> tuple[tuple[int, dict, bytes], bytes]:
            with self._lock:
                self.counters.emulated += 1
            return _query_error("InvalidParameterCombination", message, 400, RDS_NS), body

        target = current
        if asked:
            known = [r["EngineVersion"] for r in rows]
            if asked in known or asked == current:
                target = asked
            elif "." not in asked and any(_major(v) == asked for v in known):
                default = self._db_default(engine, asked) or asked
                newer = _major(current) != asked or _version_key(current) < _version_key(default)
                target = default if newer else current
            else:
                return refuse(f"Cannot find version {asked} for {engine}")
            row = next((r for r in rows if r["EngineVersion"] == current), None)
            if _version_key(target) < _version_key(current) or (
                    row and target != current and target not in [t["EngineVersion"] for t in self._db_targets(row)]):
                return refuse(f"Cannot upgrade {engine} from {current} to {target}")
            if _major(target) != _major(current) and params.get("AllowMajorVersionUpgrade", "").lower() != "true":
                return refuse("The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.")
            if _major(target) == _major(current) and target != current:
                behind = self._replicas_behind(call.region, db, target)
                if behind:
                    with self._lock:
                        self.counters.emulated += 1
                    return _query_error(
                        "DBUpgradeDependencyFailure",
                        f"One or more of the DB Instance's read replicas need to be upgraded: {', '.join(behind)}",
                        400, RDS_NS), body
        family = self._db_family(engine, target)
        in_use = [g.get("DBParameterGroupName") for g in db.get("DBParameterGroups") or []]
        if group:
            group_family = self._db_group_family(call.region, group)
            if group_family is not None and group_family != family:
                return refuse(f"The parameter group {group} with DBParameterGroupFamily {group_family} can't be used "
                              f"for this instance. Use a parameter group with DBParameterGroupFamily {family}.")
        elif _major(target) != _major(current) and in_use and not str(in_use[0]).startswith("default."):
            old = self._db_group_family(call.region, in_use[0]) or self._db_family(engine, current)
            return refuse(f"The parameter group {in_use[0]} with DBParameterGroupFamily {old} can't be used "
                          f"for this instance. Use a parameter group with DBParameterGroupFamily {family}.")
        if asked and target != asked:
            params["EngineVersion"] = target
            body = _form(params)
        return None, body

    def _replicas_behind(self, region: str, primary: dict, target: str) -> list[str]:
        """The in-Region read replicas of `primary` that run a version older
        than `target`. A minor upgrade must go to them first: "If your
        database has read replicas, you must first upgrade all of the read
        replicas before you upgrade the source instance" (RDS User Guide,
        "Upgrades of the RDS for PostgreSQL DB engine", Minor version
        upgrades). RDS refuses the source otherwise with 400
        `DBUpgradeDependencyFailure` "One or more of the DB Instance's read
        replicas need to be upgraded: <ids>" (the error code and text as
        RDS answers them, reported in hashicorp/terraform-provider-aws#22107
        and aws/aws-cdk#26755; the API reference lists the code without the
        text). moto upgrades the source alone."""
        rds = self._moto("rds", region)
        behind = []
        for replica in primary.get("ReadReplicaDBInstanceIdentifiers", []):
            if replica.startswith("arn:"):
                continue  # another Region's
            try:
                have = rds.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0].get("EngineVersion", "")
            except botocore.exceptions.ClientError:
                continue
            if _version_key(have) < _version_key(target):
                behind.append(replica)
        return behind

    def _upgrade_read_replicas(self, region: str, ident: str) -> None:
        """After a major version upgrade of an RDS for PostgreSQL instance,
        its in-Region read replicas run the new version too: "When you
        upgrade a PostgreSQL Single-AZ DB instance or Multi-AZ DB instance
        deployment to its next major version, any read replicas associated
        with the database are also upgraded to that next major version"
        ("Choosing a major version for an RDS for PostgreSQL upgrade"; "If
        you upgrade a DB instance that has in-Region read replicas, Amazon
        RDS upgrades the replicas along with the primary DB instance",
        "Upgrades of the RDS for PostgreSQL DB engine", RDS User Guide).
        Minor upgrades leave replicas alone (nothing documents otherwise).
        moto upgrades only the primary; the proxy upgrades the replicas in
        moto."""
        rds = self._moto("rds", region)
        try:
            primary = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except botocore.exceptions.ClientError:
            return
        if primary.get("Engine") != "postgres":
            return
        version = primary.get("EngineVersion", "")
        for replica in primary.get("ReadReplicaDBInstanceIdentifiers", []):
            if replica.startswith("arn:"):
                continue  # another Region's
            try:
                have = rds.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0].get("EngineVersion", "")
                if _major(have) != _major(version):
                    rds.modify_db_instance(DBInstanceIdentifier=replica, EngineVersion=version,
                                           AllowMajorVersionUpgrade=True, ApplyImmediately=True)
            except botocore.exceptions.ClientError:
                continue

    # -- ElastiCache engine versions and cache parameter groups --------------------------

    # -- recovery drills: point-in-time restore, forced failovers ------------------------

    def _drill_request(self, call: Call) -> tuple[int, dict, bytes] | None:
        """RebootDBInstance with ForceFailover=true on an instance that is
        not Multi-AZ: AWS refuses it ("ForceFailover ... Constraint: You
        can't enable force failover if the instance isn't configured for
        Multi-AZ", RDS API Reference, RebootDBInstance; the error is
        InvalidParameterCombination). moto reboots it."""
        if call.action != "RebootDBInstance" or call.params.get("ForceFailover", "").lower() != "true":
            return None
        ident = call.params.get("DBInstanceIdentifier", "")
        try:
            db = self._moto("rds", call.region).describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except botocore.exceptions.ClientError:
            return None  # moto answers the not-found itself
        if not db.get("MultiAZ"):
            with self._lock:
                self.counters.emulated += 1
            return _query_error("InvalidParameterCombination",
                                f"Cannot reboot DB instance {ident} with force failover: it is not a Multi-AZ instance.", 400, RDS_NS)
        return None

    def _drill_answer(self, call: Call, payload: bytes) -> bytes:
        """What AWS answers after moto did a drill's call (see the module
        docstring); and the statuses that follow in DescribeDBInstances and
        DescribeReplicationGroups."""
        if call.service == "rds" and call.action == "RestoreDBInstanceToPointInTime":
            # RestoreDBInstanceToPointInTime (RDS API Reference): MultiAZ
            # "Default: false"; DeletionProtection "By default, deletion
            # protection isn't enabled". moto copies both from the source.
            target = call.params.get("TargetDBInstanceIdentifier", "")
            multi_az = call.params.get("MultiAZ", "false").lower() == "true"
            protected = call.params.get("DeletionProtection", "false").lower() == "true"
            self._moto("rds", call.region).modify_db_instance(
                DBInstanceIdentifier=target, MultiAZ=multi_az, DeletionProtection=protected, ApplyImmediately=True)
            with self._lock:
                self.counters.emulated += 1
            text = payload.decode()
            text = re.sub(r"<MultiAZ>[^<]*</MultiAZ>", f"<MultiAZ>{str(multi_az).lower()}</MultiAZ>", text, count=1)
            text = re.sub(r"<DeletionProtection>[^<]*</DeletionProtection>",
                          f"<DeletionProtection>{str(protected).lower()}</DeletionProtection>", text, count=1)
            return re.sub(r"<DBInstanceStatus>[^<]*</DBInstanceStatus>", "<DBInstanceStatus>creating</DBInstanceStatus>", text, count=1).encode()
        if call.service == "rds" and call.action == "RebootDBInstance":
            # "the DB instance status is set to rebooting" until the
            # reboot (and, with ForceFailover, the failover to the standby)
            # is done (RDS User Guide, Rebooting a DB instance).
            ident = call.params.get("DBInstanceIdentifier", "")
            with self._lock:
                self._creating[("rds-reboot", call.region, ident)] = self.failover_reads
                self.counters.emulated += 1
            return re.sub(r"<DBInstanceStatus>[^<]*</DBInstanceStatus>", "<DBInstanceStatus>rebooting</DBInstanceStatus>",
                          payload.decode(), count=1).encode()
        if call.service == "rds" and call.action == "DescribeDBInstances":
            return self._rewrite_xml(payload, call.region, "DBInstance", "DBInstanceIdentifier", "rds-reboot", "DBInstanceStatus", "rebooting")
        if call.service == "elasticache" and call.action == "DescribeReplicationGroups":
            text = payload.decode()
            pieces, last = [], 0
            for start, end, name in _xml_items(text, "ReplicationGroup", "ReplicationGroupId"):
                if self._take_creating("cache-failover", call.region, name):
                    pieces += [text[last:start], text[start:end].replace("<Status>available</Status>", "<Status>modifying</Status>")]
                    last = end
            if pieces:
                return ("".join(pieces) + text[last:]).encode()
        return payload

    def _test_failover(self, region: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """TestFailover (ElastiCache API Reference), absent from moto:
        "Represents the input of a TestFailover operation which tests
        automatic failover on a specified node group". Errors as AWS names
        them: ReplicationGroupNotFoundFault, NodeGroupNotFoundFault,
        InvalidReplicationGroupState when automatic failover is not enabled
        (Testing automatic failover, ElastiCache User Guide: "the
        replication group must have automatic failover enabled"). The group
        and its node group then report `modifying` for `failover_reads`
        reads, as during AWS's failover (the primary is replaced)."""
        group_id = params.get("ReplicationGroupId", "")
        node_group = params.get("NodeGroupId", "")
        try:
            group = self._moto("elasticache", region).describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
        except botocore.exceptions.ClientError:
            return _query_error("ReplicationGroupNotFoundFault", f"ReplicationGroup {group_id} not found.")
        if (region, group_id) in self._deleted_groups:
            return _query_error("ReplicationGroupNotFoundFault", f"ReplicationGroup {group_id} not found.")
        if group.get("AutomaticFailover") != "enabled":
            return _query_error("InvalidReplicationGroupState",
                                f"Replication group {group_id} must have automatic failover enabled to test failover.", 400)
        if node_group not in [n.get("NodeGroupId") for n in group.get("NodeGroups", [])]:
            return _query_error("NodeGroupNotFoundFault", f"NodeGroup {node_group} not found in {group_id}.")
        with self._lock:
            self._creating[("cache-failover", region, group_id)] = self.failover_reads
        result = (f"<ReplicationGroup><ReplicationGroupId>{xml_escape(group_id)}</ReplicationGroupId>"
                  f"<Status>modifying</Status><AutomaticFailover>enabled</AutomaticFailover></ReplicationGroup>")
        return _query_answer("TestFailover", result, ELASTICACHE_NS)

    def _elasticache(self, call: Call) -> tuple[int, dict, bytes] | None:
        handler = {
            "DescribeCacheEngineVersions": self._describe_cache_engine_versions,
            "CreateCacheParameterGroup": self._create_cache_parameter_group,
            "DescribeCacheParameterGroups": self._describe_cache_parameter_groups,
            "DeleteCacheParameterGroup": self._delete_cache_parameter_group,
            "TestFailover": self._test_failover,
        }.get(call.action)
        if handler is None:
            return None
        with self._lock:
            self.counters.emulated += 1
        return handler(call.region, call.params)

    def _cache_default(self, engine: str, major: str | None = None) -> str | None:
        rows = sorted((r for r in self.cache_engine_versions if r["Engine"] == engine
                       and (major is None or _major(r["EngineVersion"]) == major)),
                      key=lambda r: _version_key(r["EngineVersion"]))
        marked = [r for r in rows if r.get("Default")]
        return (marked or rows or [{}])[-1].get("EngineVersion")

    def _describe_cache_engine_versions(self, region: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """DescribeCacheEngineVersions (ElastiCache API Reference): `Engine`,
        `EngineVersion` (see `_version_matches`), `CacheParameterGroupFamily`,
        `DefaultOnly` ("only the default version of the specified engine or
        engine and major version combination"), `MaxRecords` (20 to 100) and
        `Marker`. Assumptions: the descriptions ("Redis", "redis version
        7.1") and which version is the default (the newest)."""
        limit = _max_records(params)
        if isinstance(limit, str):
            return _query_error("InvalidParameterValue", limit, 400)
        start = _page_offset(params.get("Marker"))
        if start is None:
            return _query_error("InvalidParameterValue", "The marker is not valid", 400)
        rows = []
        for row in sorted(self.cache_engine_versions, key=lambda r: (r["Engine"], _version_key(r["EngineVersion"]))):
            if params.get("Engine") and row["Engine"] != params["Engine"]:
                continue
            if params.get("EngineVersion") and not _version_matches(params["EngineVersion"], row["EngineVersion"]):
                continue
            if params.get("CacheParameterGroupFamily") and row["CacheParameterGroupFamily"] != params["CacheParameterGroupFamily"]:
                continue
            rows.append(row)
        if params.get("DefaultOnly", "false").lower() == "true":
            per_major = bool(params.get("EngineVersion") or params.get("CacheParameterGroupFamily"))
            rows = [r for r in rows if r["EngineVersion"] == self._cache_default(
                r["Engine"], _major(r["EngineVersion"]) if per_major else None)]
        items = "".join(
            "<CacheEngineVersion>" + _xml("Engine", r["Engine"]) + _xml("EngineVersion", r["EngineVersion"])
            + _xml("CacheParameterGroupFamily", r["CacheParameterGroupFamily"])
            + _xml("CacheEngineDescription", r.get("CacheEngineDescription") or {"redis": "Redis", "valkey": "Valkey"}.get(r["Engine"], r["Engine"]))
            + _xml("CacheEngineVersionDescription", r.get("CacheEngineVersionDescription") or f"{r['Engine']} version {r['EngineVersion']}")
            + "</CacheEngineVersion>"
            for r in rows[start:start + limit]
        )
        marker = _xml("Marker", _page_token(start + limit)) if start + limit < len(rows) else ""
        return _query_answer("DescribeCacheEngineVersions", f"<CacheEngineVersions>{items}</CacheEngineVersions>{marker}", ELASTICACHE_NS)

    def _account(self, region: str) -> str:
        try:
            return self._moto("sts", region).get_caller_identity()["Account"]
        except botocore.exceptions.ClientError:
            return "123456789012"

    def _cache_groups_locked(self, region: str) -> dict[str, dict]:
        """The region's cache parameter groups: a default one
        (`default.<family>`) per family of `cache_engine_versions`, as AWS
        has them, and those made with CreateCacheParameterGroup."""
        groups = {f"default.{r['CacheParameterGroupFamily']}": {
            "CacheParameterGroupFamily": r["CacheParameterGroupFamily"],
            "Description": f"Default parameter group for {r['CacheParameterGroupFamily']}"}
            for r in self.cache_engine_versions}
        groups.update({name: g for (where, name), g in self._cache_parameter_groups.items() if where == region})
        return dict(sorted(groups.items()))

    def _cache_group_xml(self, region: str, name: str, group: dict) -> str:
        return ("<CacheParameterGroup>" + _xml("CacheParameterGroupName", name)
                + _xml("CacheParameterGroupFamily", group["CacheParameterGroupFamily"])
                + _xml("Description", group["Description"]) + _xml("IsGlobal", False)
                + _xml("ARN", f"arn:aws:elasticache:{region}:{self._account(region)}:parametergroup:{name}")
                + "</CacheParameterGroup>")

    def _create_cache_parameter_group(self, region: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """CreateCacheParameterGroup (ElastiCache API Reference; moto 5.2.5
        lacks it): the three parameters are required (MissingParameter);
        the family must be one the API lists, valkey8 and valkey7 among
        them (InvalidParameterValue); "This value is stored as a lowercase
        string"; a taken name is CacheParameterGroupAlreadyExists.
        Assumptions: the messages."""
        for required in ("CacheParameterGroupName", "CacheParameterGroupFamily", "Description"):
            if not params.get(required):
                return _query_error("MissingParameter", f"The request must contain the parameter {required}", 400)
        name = params["CacheParameterGroupName"].lower()
        family = params["CacheParameterGroupFamily"]
        if family not in CACHE_PARAMETER_GROUP_FAMILIES:
            return _query_error("InvalidParameterValue",
                                f"The parameter CacheParameterGroupFamily is not a valid cache parameter group family: {family}", 400)
        with self._lock:
            if name in self._cache_groups_locked(region):
                return _query_error("CacheParameterGroupAlreadyExists", f"Parameter group {name} already exists.", 400)
            group = self._cache_parameter_groups[(region, name)] = {
                "CacheParameterGroupFamily": family, "Description": params["Description"]}
        return _query_answer("CreateCacheParameterGroup", self._cache_group_xml(region, name, group), ELASTICACHE_NS)

    def _describe_cache_parameter_groups(self, region: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """DescribeCacheParameterGroups (ElastiCache API Reference): one by
        name (CacheParameterGroupNotFound when there is none) or all, in
        pages of MaxRecords (20 to 100)."""
        limit = _max_records(params)
        if isinstance(limit, str):
            return _query_error("InvalidParameterValue", limit, 400)
        start = _page_offset(params.get("Marker"))
        if start is None:
            return _query_error("InvalidParameterValue", "The marker is not valid", 400)
        with self._lock:
            groups = self._cache_groups_locked(region)
        name = params.get("CacheParameterGroupName")
        if name:
            if name.lower() not in groups:
                return _query_error("CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
            groups = {name.lower(): groups[name.lower()]}
        names = list(groups)
        items = "".join(self._cache_group_xml(region, n, groups[n]) for n in names[start:start + limit])
        marker = _xml("Marker", _page_token(start + limit)) if start + limit < len(names) else ""
        return _query_answer("DescribeCacheParameterGroups", f"<CacheParameterGroups>{items}</CacheParameterGroups>{marker}", ELASTICACHE_NS)

    def _delete_cache_parameter_group(self, region: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        """DeleteCacheParameterGroup (ElastiCache API Reference): a group
        that does not exist is CacheParameterGroupNotFound; a default one
        cannot be deleted (InvalidCacheParameterGroupState; assumption: the
        message)."""
        name = (params.get("CacheParameterGroupName") or "").lower()
        with self._lock:
            if name not in self._cache_groups_locked(region):
                return _query_error("CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
            if (region, name) not in self._cache_parameter_groups:
                return _query_error("InvalidCacheParameterGroupState", f"Default parameter group {name} cannot be deleted.", 400)
            del self._cache_parameter_groups[(region, name)]
        body = (
            f'<DeleteCacheParameterGroupResponse xmlns="{ELASTICACHE_NS}"><ResponseMetadata>'
            f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></DeleteCacheParameterGroupResponse>"
        ).encode()
        return 200, {"Content-Type": "text/xml"}, body

    # -- WAFv2 ---------------------------------------------------------------------------

    def _list_resources_for_web_acl(self, call: Call, body: bytes) -> tuple[int, dict, bytes]:
        """ListResourcesForWebACL (WAFv2 API Reference; moto 5.2.5 lacks
        it): the ARNs of the resources of `ResourceType` (by default
        APPLICATION_LOAD_BALANCER) associated with the web ACL, from moto's
        own associations (GetWebACLForResource of each application load
        balancer of the Region); WAFNonexistentItemException for a web ACL
        that does not exist. Assumptions: other resource types, and
        CloudFront web ACLs ("For Amazon CloudFront, don't use this call"),
        list nothing."""
        with self._lock:
            self.counters.emulated += 1
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        arn = str(request.get("WebACLArn") or "")
        match = re.fullmatch(r"arn:aws[\w-]*:wafv2:([^:]+):\d*:(regional|global)/webacl/([^/]+)/([^/]+)", arn)
        if not match:
            return _json_error("WAFInvalidParameterException",
                               f"Error reason: The ARN isn't valid., field: RESOURCE_ARN, parameter: {arn}")
        region, scope, name, ident = match.groups()
        waf = self._moto("wafv2", region)
        try:
            waf.get_web_acl(Name=name, Scope="REGIONAL" if scope == "regional" else "CLOUDFRONT", Id=ident)
        except botocore.exceptions.ClientError:
            return _json_error("WAFNonexistentItemException",
                               "AWS WAF couldn’t perform the operation because your resource doesn’t exist.")
        arns = []
        if scope == "regional" and (request.get("ResourceType") or "APPLICATION_LOAD_BALANCER") == "APPLICATION_LOAD_BALANCER":
            for lb in self._load_balancers(region):
                if lb.get("Type") != "application":
                    continue
                acl = waf.get_web_acl_for_resource(ResourceArn=lb["LoadBalancerArn"]).get("WebACL") or {}
                if acl.get("ARN") == arn:
                    arns.append(lb["LoadBalancerArn"])
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        return 200, headers, json.dumps({"ResourceArns": arns}).encode()

    def _cloudtrail_delivery_allowed(self, call: Call, body: bytes) -> tuple[int, dict, bytes] | None:
        """CreateTrail and UpdateTrail refuse a bucket or key that would not
        let CloudTrail deliver (moto 5.2.5 only checks that the bucket
        exists). CloudTrail API Reference, CreateTrail, Errors:
        InsufficientS3BucketPolicyException ("the policy on the S3 bucket is
        not sufficient") and InsufficientEncryptionPolicyException ("the
        policy on the S3 bucket or KMS key does not have sufficient
        permissions"). What is sufficient is the CloudTrail User Guide's
        "Amazon S3 bucket policy for CloudTrail" (Allow
        `cloudtrail.amazonaws.com` `s3:GetBucketAcl` on the bucket and
        `s3:PutObject` on `<prefix>/AWSLogs/<account>/*`) and "Configure AWS
        KMS key policies for CloudTrail" (`kms:GenerateDataKey*` for
        `cloudtrail.amazonaws.com`). A statement with an `aws:SourceArn`
        condition counts only for the trail it names, as IAM evaluates it
        (CloudTrail sends the trail's ARN). None: forward to moto."""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        name, bucket = str(request.get("Name") or ""), request.get("S3BucketName")
        key = request.get("KmsKeyId")
        region = call.region
        account = self._moto("sts", region).get_caller_identity()["Account"]
        trail = name if name.startswith("arn:") else f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"

        def statements(policy: str | None) -> list[dict]:
            if not policy:
                return []
            doc = json.loads(policy)
            listed = doc.get("Statement") or []
            return listed if isinstance(listed, list) else [listed]

        def as_list(v) -> list:
            return v if isinstance(v, list) else [v]

        def allows(st: dict, action: str, resource: str) -> bool:
            principal = st.get("Principal")
            services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
            source = ((st.get("Condition") or {}).get("StringEquals") or {}).get("aws:SourceArn")
            return (st.get("Effect") == "Allow" and "cloudtrail.amazonaws.com" in services
                    and any(fnmatch.fnmatchcase(action, a) for a in as_list(st.get("Action"))
                            if isinstance(a, str))
                    and any(fnmatch.fnmatchcase(resource, r) for r in as_list(st.get("Resource"))
                            if isinstance(r, str))
                    and (source is None or trail in as_list(source)))

        if bucket:
            prefix = request.get("S3KeyPrefix")
            objects = f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}AWSLogs/{account}/x"
            try:
                policy = self._moto("s3", region).get_bucket_policy(Bucket=bucket)["Policy"]
            except botocore.exceptions.ClientError:
                policy = None
            found = statements(policy)
            if not (any(allows(st, "s3:GetBucketAcl", f"arn:aws:s3:::{bucket}") for st in found)
                    and any(allows(st, "s3:PutObject", objects) for st in found)):
                with self._lock:
                    self.counters.emulated += 1
                return _json_error("InsufficientS3BucketPolicyException",
                                   f"Incorrect S3 bucket policy is detected for bucket: {bucket}")
        if key:
            try:
                policy = self._moto("kms", region).get_key_policy(KeyId=key, PolicyName="default")["Policy"]
            except botocore.exceptions.ClientError:
                policy = None
            if not any(allows(st, "kms:GenerateDataKey", "*") for st in statements(policy)):
                with self._lock:
                    self.counters.emulated += 1
                return _json_error("InsufficientEncryptionPolicyException",
                                   f"Insufficient permissions to access S3 bucket {bucket} or KMS key {key}.")
        return None

    # -- forwarding --------------------------------------------------------------

    def _serve(
        self, method: str, path: str, headers: dict, body: bytes, started: float | None = None
    ) -> tuple[int, dict, bytes]:
        started = time.monotonic() if started is None else started
        call = self._classify(headers, path, body)
        operation = operation_name(call, method, path)
        key = f"{call.service}:{operation}"
        with self._lock:
            self.calls.append(call)
            self.counters.calls += 1
            self.counters.by_service[call.service] = self.counters.by_service.get(call.service, 0) + 1
            self.counters.by_action[call.action] = self.counters.by_action.get(call.action, 0) + 1
            self.counters.by_operation[key] = self.counters.by_operation.get(key, 0) + 1
        status = 502
        try:
            try:
                status, reply_headers, payload = self._answer(method, path, headers, body, call, operation)
            except _Drop:
                status = 0  # no answer
                raise
            return status, reply_headers, payload
        finally:
            if self.record:
                exchange = Exchange(call.service, operation, started, time.monotonic(), status)
                with self._lock:
                    self.journal.append(exchange)

    def _answer(
        self, method: str, path: str, headers: dict, body: bytes, call: Call, operation: str
    ) -> tuple[int, dict, bytes]:
        fault = self._fault(call, operation)
        if fault == "drop":
            raise _Drop()
        if isinstance(fault, tuple):
            return fault
        answer = self._lifecycle(call) or self._dependencies(call) or self._repeated(call, operation, body)
        if not answer and call.service == "cloudfront":
            answer = self._cloudfront_oac_refusal(call, method, path, body)
        if not answer:
            answer, body = self._emulate(call, operation, path, body)
            token = self._client_token(call, operation, body) if answer else None
            if token and answer[0] == 200:
                with self._lock:
                    self._answered_tokens[token] = answer
        if answer:
            return self._after_fault(fault, call, answer)
        if "Content-Length" in headers or "content-length" in headers:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
        self._delay(call, operation)
        cbor = RpcV2Cbor.operation(headers, path) is not None and call.service in CBOR_SERVICES
        upstream_path = path
        if cbor:
            upstream_path, headers, body = RpcV2Cbor.request(call.service, operation, path, headers, body)
        forwarded = {k: v for k, v in self._routable(headers, upstream_path).items() if k.lower() not in HOP_BY_HOP}
        with self._upstream_slots:
            connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
            try:
                connection.request(method, upstream_path, body=body or None, headers=forwarded)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                reply_headers = {k: v for k, v in response.getheaders()}
            except (ConnectionError, http.client.HTTPException) as e:
                # moto's failure, not the client's: said aloud (the server's
                # handle_error stays quiet about clients that went away, and
                # ConnectionResetError is both).
                raise UpstreamFailed(f"moto did not answer {call.service}:{operation}: {e!r}") from e
            finally:
                connection.close()
        if cbor:
            reply_headers, payload = RpcV2Cbor.answer(call.service, operation, status, reply_headers, payload)
            return self._after_fault(fault, call, (status, reply_headers, payload))
        payload = self._after(call, status, payload)
        payload = self._eks_cluster_group(call, operation, path, body, status, payload)
        payload = self._eks_after(call, operation, path, body, status, payload)
        payload = self._cloudfront_after(call, method, path, body, status, payload)
        self._kms_after(call, body, status, payload)
        payload = self._s3_replication_after(operation, path, body, status, payload)
        if call.service == "secretsmanager" and status == 200:
            payload = self._secret_replicas_after(call, operation, body, payload)
        if status == 400 and call.service == "wafv2" and b"WafV2DuplicateItem" in payload:
            # moto names WAF's duplicate error differently from AWS (in the
            # body and in X-Amzn-ErrorType, which the SDK reads first).
            payload = payload.replace(b"WafV2DuplicateItem", b"WAFDuplicateItemException")
            reply_headers = {
                k: (v.replace("WafV2DuplicateItem", "WAFDuplicateItemException") if k.lower() == "x-amzn-errortype" else v)
                for k, v in reply_headers.items()
            }
        token = self._client_token(call, operation, body)
        if token and status in (200, 201):
            with self._lock:
                self._answered_tokens[token] = (status, reply_headers, payload)
        if call.service == "shield" and operation == "DescribeSubscription" and status == 200:
            payload = _subscription_times(payload)
        if call.service == "kms" and operation == "ListAliases" and status == 200:
            payload = _page_of_aliases(body, payload)
        if status == 200:
            payload = self._drill_answer(call, payload)
            payload = self._creating_rewrite(call, method, path, body, operation, payload)
        return self._after_fault(fault, call, (status, reply_headers, payload))

    def _after_fault(self, fault, call: Call, answer: tuple[int, dict, bytes]) -> tuple[int, dict, bytes]:
        """What the client gets of a call moto has done: the answer, or the
        fault injected after it."""
        if fault == "drop-after":
            raise _Drop()
        if fault == "5xx-after":
            return fault_answer(call.service, "5xx")
        if fault == "hang-after":
            time.sleep(self.hang_seconds)
            raise _Drop()
        return answer


def main() -> None:
    """`python tests/awsproxy.py UPSTREAM`: serve until killed; prints the endpoint."""
    import signal
    import sys

    proxy = AwsProxy(sys.argv[1])
    print(proxy.endpoint, flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    proxy.stop()


if __name__ == "__main__":
    main()
