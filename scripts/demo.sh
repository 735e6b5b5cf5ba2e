#!/usr/bin/env bash
# Runs `terraform apply` of an example against a local moto server and prints
# its outputs. Used by `make demo`; needs IDIS_PROVIDER_BIN and VENV.
set -euo pipefail
example=${1:?usage: demo.sh EXAMPLE_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
: "${IDIS_PROVIDER_BIN:?}" "${VENV:?}"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)

work="$root/.build/demo"
mirror="$work/mirror/registry.terraform.io/idis/idis/$version/linux_amd64"
mkdir -p "$mirror"
cp "$IDIS_PROVIDER_BIN" "$mirror/terraform-provider-idis_v$version"
cat > "$work/terraformrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/idis/idis"]
  }
  direct {
    exclude = ["registry.terraform.io/idis/idis"]
  }
}
CFG

port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null && break
  sleep 0.2
done
echo "moto server on http://127.0.0.1:$port (log: $work/moto.log)"

# The provider reaches moto through our proxy, which completes what moto
# leaves unfinished the way AWS does (see tests/awsproxy.py).
coproc PROXY { exec "$VENV/bin/python" "$root/tests/awsproxy.py" "http://127.0.0.1:$port"; }
proxy_pid=$PROXY_PID
trap 'kill $proxy_pid $moto_pid 2>/dev/null || true' EXIT
read -r endpoint <&"${PROXY[0]}"
echo "AWS proxy on $endpoint"

export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
# The production contract asks for DDoS protection, which needs a Shield
# Advanced subscription on the account (the plan checks it): the emulated
# account has one, as a production account would.
"$VENV/bin/python" -c "import boto3; boto3.client('shield', region_name='us-east-1', endpoint_url='http://127.0.0.1:$port', aws_access_key_id='testing', aws_secret_access_key='testing').create_subscription()"
echo "emulated account subscribed to Shield Advanced"
# The emulator makes everything available at once: poll it quickly.
export IDIS_POLL_INTERVAL_MS=200

state="$work/$(basename "$example")"
rm -rf "$state" && mkdir -p "$state"
# Keep the example's relative module path (../../modules/idis) working.
mkdir -p "$state/examples" && cp -r "$root/$example" "$state/examples/"
rm -rf "$state/modules" && cp -r "$root/modules" "$state/modules"
cd "$state/examples/$(basename "$example")"
terraform init -input=false -no-color >/dev/null
terraform apply -input=false -auto-approve -no-color
echo
echo "Second plan (expect no changes):"
terraform plan -input=false -no-color -detailed-exitcode | tail -n 3
