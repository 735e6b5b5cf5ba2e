# Promotes an environment's DR database when its primary region does not
# answer (Terraform 1.14+). Keep this configuration apart from the one that
# manages the environment: it asks only the DR region, so its provider is
# configured there and it holds no resource to refresh.
#
#   terraform apply -var environment=production -var dr_region=us-west-2 \
#     -invoke=action.idis_dr_promote.now
#
# On Terraform 1.11:
#
#   AWS_REGION=us-west-2 terraform-provider-idis drill dr-promote \
#     --environment production --region us-west-2
#
# Once the primary region answers, set `dr_promote = true` in the managing
# configuration and apply: it finds the database promoted and builds the
# rest of the DR site (NAT gateways, cache, EKS cluster).

terraform {
  required_version = ">= 1.14.0"
  required_providers {
    idis = {
      source = "idis/idis"
    }
  }
}

variable "environment" {
  type        = string
  description = "Name of the environment (the module's `environment` input)."
}

variable "dr_region" {
  type        = string
  description = "The environment's DR region (the module's `dr_region` input)."
}

provider "idis" {
  region = var.dr_region
}

# One way: RDS cannot make the promoted database a replica again.
action "idis_dr_promote" "now" {
  config {
    environment           = var.environment
    region                = var.dr_region
    backup_retention_days = 30
  }
}
