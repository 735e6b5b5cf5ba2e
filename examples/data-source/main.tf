# An application stack that uses the production environment without owning
# it: the environment is looked up in AWS by name, so this stack needs no
# access to the state of the stack that manages it.
terraform {
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
  }
}

# Region, credentials and endpoint from the standard AWS environment.
provider "idis" {}

variable "environment" {
  description = "Name of the IDIS environment to deploy into."
  type        = string
  default     = "production"
}

data "idis_environment" "platform" {
  name = var.environment
}

# What the application's Kubernetes manifests, Helm values or
# external-secrets configuration need.
output "cluster_endpoint" {
  value = data.idis_environment.platform.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  value = data.idis_environment.platform.cluster_certificate_authority_data
}

output "database_endpoint" {
  value = data.idis_environment.platform.database_endpoint
}

output "cache_primary_endpoint" {
  value = data.idis_environment.platform.cache_primary_endpoint
}

output "audit_bucket_arn" {
  value = data.idis_environment.platform.audit_bucket_arn
}

output "app_config" {
  description = "Non-secret IDIS_* settings for the application's ConfigMap."
  value       = data.idis_environment.platform.app_config
}

output "secret_refs" {
  description = "Secret IDIS_* settings as Secrets Manager ARNs, for external-secrets."
  value       = data.idis_environment.platform.secret_refs
}
