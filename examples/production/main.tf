# The production contract (DESIGN.md), verbatim. `make demo` applies this
# against a local AWS emulator.
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

variable "deletion_protection" {
  description = "Keep on in production; turn off only to destroy the environment deliberately."
  type        = bool
  default     = true
}

module "idis_production" {
  source = "../../modules/idis"

  # Required
  environment = "production"
  region      = "us-east-1"
  vpc_cidr    = "10.0.0.0/16"

  # Database
  db_instance_class   = "db.r6g.xlarge"
  db_multi_az         = true
  db_backup_retention = 30

  # Compute
  eks_node_instance_type = "m6i.xlarge"
  eks_node_min_count     = 3
  eks_node_max_count     = 10

  # Storage
  s3_versioning_enabled = true
  s3_worm_enabled       = true

  # Networking
  enable_waf             = true
  enable_ddos_protection = true

  # Beyond the contract
  tenants             = ["acme", "globex"]
  deletion_protection = var.deletion_protection

  # Who may use the cluster's Kubernetes API (EKS access entries).
  eks_admin_principals  = ["arn:aws:iam::123456789012:role/idis-platform-admins"]
  eks_viewer_principals = ["arn:aws:iam::123456789012:role/idis-support"]

  # The UI's static build behind CloudFront, the API under /api/*.
  cdn               = true
  cdn_origin_domain = "api.production.idis.example.com"
}

output "vpc_id" {
  value = module.idis_production.vpc_id
}

output "cluster_endpoint" {
  value = module.idis_production.cluster_endpoint
}

output "database_endpoint" {
  value = module.idis_production.database_endpoint
}

output "database_master_secret_arn" {
  value = module.idis_production.database_master_secret_arn
}

output "cache_primary_endpoint" {
  value = module.idis_production.cache_primary_endpoint
}

output "audit_bucket_name" {
  value = module.idis_production.audit_bucket_name
}

output "documents_bucket_name" {
  value = module.idis_production.documents_bucket_name
}

output "tenant_key_arns" {
  value = module.idis_production.tenant_key_arns
}

output "web_acl_arn" {
  value = module.idis_production.web_acl_arn
}

output "cdn_domain_name" {
  value = module.idis_production.cdn_domain_name
}

output "assets_bucket_name" {
  value = module.idis_production.assets_bucket_name
}

output "ingress_annotations" {
  value = module.idis_production.ingress_annotations
}

output "app_config" {
  value = module.idis_production.app_config
}

output "secret_refs" {
  value = module.idis_production.secret_refs
}

output "kubernetes_manifests" {
  value = module.idis_production.kubernetes_manifests
}
