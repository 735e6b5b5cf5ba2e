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
- EC2 refuses to delete what something still depends on, as AWS does and
  moto does not (DependencyViolation): a subnet that still holds network
  interfaces or load balancers, a security group that network interfaces
  or load balancers use or other groups' rules reference, a VPC that still
  holds security groups besides its default one;
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

import boto3
import botocore.exceptions

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"}
SERVICE_IN_AUTH = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")

ELASTICACHE_NS = "http://elasticache.amazonaws.com/doc/2015-02-02/"


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
    # Creates repeated with a client token and answered as the first one.
    repeated_tokens: int = 0
    # "service:Operation" -> faults injected into that operation's calls.
    faults_by_operation: dict[str, int] = field(default_factory=dict)

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
    ("POST", "cloudfront", re.compile(r"^/[^/]+/distribution/?$"), "CreateDistribution"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/distribution/?$"), "ListDistributions"),
    ("GET", "cloudfront", re.compile(r"^/[^/]+/tagging/?$"), "ListTagsForResource"),
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

# Services by protocol (the signing name in the Authorization header).
JSON_SERVICES = {"kms", "wafv2", "shield", "secretsmanager", "tagging", "dynamodb", "logs"}
REST_JSON_SERVICES = {"eks"}
REST_XML_SERVICES = {"s3", "cloudfront"}


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
        # How many status reads of a component created through the proxy
        # report it as still being created: an int for every kind, or
        # {kind: reads} with kinds from CREATING_KINDS.
        self.creating_reads = creating_reads
        # (kind, id) -> status reads still to answer "creating".
        self._creating: dict[tuple[str, str], int] = {}
        # (service, operation, client token) -> the answer AWS gave.
        self._answered_tokens: dict[tuple[str, str, str], tuple[int, dict, bytes]] = {}
        # "Operation" or "service:Operation" -> seconds to hold the call.
        self.delays: dict[str, float] = dict(delays or {})
        self.record = record
        self.journal: list[Exchange] = []
        self.counters = Counters()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._deleted_groups: set[str] = set()
        self._deleted_subnet_groups: set[str] = set()
        self._performance_insights: dict[str, str] = {}
        # Cluster name -> the security group EKS made for it (see
        # `_eks_cluster_group`).
        self.eks_cluster_groups: dict[str, str] = {}
        self.calls: list[Call] = []
        self._clients: dict[tuple[str, str], object] = {}
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
            return set(self._deleted_subnet_groups)

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
    def _classify(headers: dict, path: str, body: bytes) -> Call:
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        match = SERVICE_IN_AUTH.search(auth)
        region = match.group(1) if match else "us-east-1"
        service = match.group(2) if match else "unknown"
        target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
        params: dict[str, str] = {}
        if target:
            action = target.rsplit(".", 1)[-1]
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
        if call.action == "DescribeReplicationGroups" and group in self._deleted_groups:
            return _query_error("ReplicationGroupNotFoundFault", f"ReplicationGroup {group} not found.")
        if call.action == "DeleteCacheSubnetGroup":
            name = call.params.get("CacheSubnetGroupName", "")
            with self._lock:
                self._deleted_subnet_groups.add(name)
                self.counters.completed_deletions += 1
            body = (
                f'<DeleteCacheSubnetGroupResponse xmlns="{ELASTICACHE_NS}"><ResponseMetadata>'
                f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></DeleteCacheSubnetGroupResponse>"
            ).encode()
            return 200, {"Content-Type": "text/xml"}, body
        if call.action == "DescribeCacheSubnetGroups" and call.params.get("CacheSubnetGroupName") in self._deleted_subnet_groups:
            name = call.params["CacheSubnetGroupName"]
            return _query_error("CacheSubnetGroupNotFoundFault", f"CacheSubnetGroup {name} not found.")
        if call.action == "CreateCacheSubnetGroup":
            self._deleted_subnet_groups.discard(call.params.get("CacheSubnetGroupName", ""))
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
                self._deleted_groups.add(call.params.get("ReplicationGroupId", ""))
                self.counters.completed_deletions += 1
        if call.service == "rds":
            ident = call.params.get("DBInstanceIdentifier", "")
            if call.action in ("CreateDBInstance", "CreateDBInstanceReadReplica"):
                self._performance_insights[ident] = call.params.get("EnablePerformanceInsights", "false").lower()
            elif call.action == "ModifyDBInstance" and "EnablePerformanceInsights" in call.params:
                self._performance_insights[ident] = call.params["EnablePerformanceInsights"].lower()
            elif call.action == "DescribeDBInstances":
                payload = self._with_performance_insights(payload)
        return payload

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
                    self.eks_cluster_groups[name] = group
            return self._with_cluster_group(payload, name)
        if operation == "DescribeCluster" and len(parts) >= 2:
            return self._with_cluster_group(payload, parts[1])
        if operation == "DeleteCluster" and len(parts) >= 2:
            with self._lock:
                group = self.eks_cluster_groups.pop(parts[1], None)
            if group:
                ec2 = self._moto("ec2", call.region)
                # Rules of other groups that let it in go with it.
                for other in ec2.describe_security_groups(
                        Filters=[{"Name": "ip-permission.group-id", "Values": [group]}])["SecurityGroups"]:
                    for permission in other["IpPermissions"]:
                        pairs = [p for p in permission.get("UserIdGroupPairs", []) if p.get("GroupId") == group]
                        if pairs and other["GroupId"] != group:
                            ec2.revoke_security_group_ingress(GroupId=other["GroupId"], IpPermissions=[
                                {**{k: v for k, v in permission.items() if k in ("IpProtocol", "FromPort", "ToPort")},
                                 "UserIdGroupPairs": [{"GroupId": group}]}])
                ec2.delete_security_group(GroupId=group)
        return payload

    def _with_cluster_group(self, payload: bytes, name: str) -> bytes:
        with self._lock:
            group = self.eks_cluster_groups.get(name)
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

    def _with_performance_insights(self, payload: bytes) -> bytes:
        text = payload.decode()

        def add(match: re.Match) -> str:
            enabled = self._performance_insights.get(match.group(1), "false")
            return f"{match.group(0)}<PerformanceInsightsEnabled>{enabled}</PerformanceInsightsEnabled>"

        if "<PerformanceInsightsEnabled>" in text:
            return payload
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
        if call.service == "secretsmanager" and operation == "CreateSecret":
            try:
                token = json.loads(body or b"{}").get("ClientRequestToken")
            except ValueError:
                return None
            return (call.service, operation, token) if token else None
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

    def _take_creating(self, kind: str, ident: str) -> bool:
        """True when this status read of (kind, ident) answers "creating"."""
        with self._lock:
            left = self._creating.get((kind, ident), 0)
            if left <= 0:
                return False
            self._creating[(kind, ident)] = left - 1
            self.counters.injected_creating += 1
            return True

    def _created(self, kind: str, ident: str) -> None:
        reads = self._reads_for(kind)
        if reads and ident:
            with self._lock:
                self._creating[(kind, ident)] = reads

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
                self._created("eks-cluster", json.loads(body or b"{}").get("name", ""))
            elif operation == "CreateNodegroup":
                name = json.loads(body or b"{}").get("nodegroupName", "")
                self._created("eks-nodegroup", f"{parts[1]}/{name}")
            elif operation == "DescribeCluster" and self._take_creating("eks-cluster", parts[1]):
                return _json_status(payload, "cluster", "CREATING")
            elif operation == "DescribeNodegroup" and self._take_creating("eks-nodegroup", f"{parts[1]}/{parts[3]}"):
                return _json_status(payload, "nodegroup", "CREATING")
            return payload
        if call.service == "rds":
            if operation in ("CreateDBInstance", "CreateDBInstanceReadReplica"):
                self._created("rds", call.params.get("DBInstanceIdentifier", ""))
            elif operation == "DescribeDBInstances":
                return self._rewrite_xml(payload, "DBInstance", "DBInstanceIdentifier", "rds", "DBInstanceStatus", "creating")
            return payload
        if call.service == "elasticache":
            if operation == "CreateReplicationGroup":
                self._created("elasticache", call.params.get("ReplicationGroupId", ""))
            elif operation == "DescribeReplicationGroups":
                return self._rewrite_xml(payload, "ReplicationGroup", "ReplicationGroupId", "elasticache", "Status", "creating")
            return payload
        if call.service == "ec2":
            if operation == "CreateNatGateway":
                # AWS answers a new NAT gateway as pending.
                text = payload.decode()
                ident = re.search(r"<natGatewayId>([^<]+)</natGatewayId>", text)
                if ident:
                    self._created("nat", ident.group(1))
                    return re.sub(r"<state>[^<]*</state>", "<state>pending</state>", text, count=1).encode()
            elif operation == "DescribeNatGateways":
                # A gateway's <state> follows its <natGatewayId> (nested
                # address items come before it).
                def pending(match: re.Match) -> str:
                    if match.group(3) == "available" and self._take_creating("nat", match.group(2)):
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
                    self._created("cloudfront", ident.group(1))
                    # AWS answers a new distribution as InProgress.
                    return re.sub(r"<Status>[^<]*</Status>", "<Status>InProgress</Status>", text, count=1).encode()
            elif method == "GET" and re.match(r"^/[^/]+/distribution/[^/]+/?$", route):
                ident = route.rstrip("/").rsplit("/", 1)[1]
                if self._take_creating("cloudfront", ident):
                    return re.sub(r"<Status>[^<]*</Status>", "<Status>InProgress</Status>", payload.decode(), count=1).encode()
            return payload
        return payload

    def _rewrite_xml(self, payload: bytes, item: str, ident: str, kind: str, field_name: str, status: str) -> bytes:
        text = payload.decode()
        pieces, last = [], 0
        for start, end, name in _xml_items(text, item, ident):
            block = text[start:end]
            if self._take_creating(kind, name):
                block = re.sub(rf"<{field_name}>[^<]*</{field_name}>", f"<{field_name}>{status}</{field_name}>", block)
                pieces.append(text[last:start])
                pieces.append(block)
                last = end
        if not pieces:
            return payload
        pieces.append(text[last:])
        return "".join(pieces).encode()

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
        if answer:
            return self._after_fault(fault, call, answer)
        self._delay(call, operation)
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            status = response.status
            reply_headers = {k: v for k, v in response.getheaders()}
        finally:
            connection.close()
        payload = self._after(call, status, payload)
        payload = self._eks_cluster_group(call, operation, path, body, status, payload)
        if status == 400 and call.service == "wafv2" and b"WafV2DuplicateItem" in payload:
            # moto names WAF's duplicate error differently from AWS (in the
            # body and in X-Amzn-ErrorType, which the SDK reads first).
            payload = payload.replace(b"WafV2DuplicateItem", b"WAFDuplicateItemException")
            reply_headers = {
                k: (v.replace("WafV2DuplicateItem", "WAFDuplicateItemException") if k.lower() == "x-amzn-errortype" else v)
                for k, v in reply_headers.items()
            }
        token = self._client_token(call, operation, body)
        if token and status == 200:
            with self._lock:
                self._answered_tokens[token] = (status, reply_headers, payload)
        if call.service == "kms" and operation == "ListAliases" and status == 200:
            payload = _page_of_aliases(body, payload)
        if status == 200:
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
