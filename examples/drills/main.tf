# Recovery drills for an environment this or another stack owns
# (Terraform 1.14+). A plain `terraform apply` plans and invokes nothing
# here; invoke one drill at a time:
#
#   terraform apply -var environment=production -invoke=action.idis_restore_check.weekly
#   terraform apply -var environment=production -invoke=action.idis_failover_drill.quarterly
#
# examples/drift-detection/drills.yml runs them on a schedule.

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
  description = "Name of the environment to drill (the module's `environment` input)."
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region the environment is in."
}

provider "idis" {
  region = var.region
}

# Restores the database to its latest restorable time into a temporary
# instance, checks it against the source and deletes it.
action "idis_restore_check" "weekly" {
  config {
    environment    = var.environment
    instance_class = "db.t4g.medium"
  }
}

# Forces a Multi-AZ failover of the database, then of the cache, and
# measures how long each took to serve again.
action "idis_failover_drill" "quarterly" {
  config {
    environment = var.environment
  }
}
