# One root configuration, one state per environment: the drift workflow (and
# the team's apply pipeline) runs it with `-backend-config=ENV.s3.tfbackend`
# and `-var-file=ENV.tfvars`. The environments share no state, keys or
# secrets: everything derives from `environment`.
terraform {
  required_version = ">= 1.11"

  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
  }

  # Remote state in S3 with locking; the bucket, key and lock table come
  # from ENV.s3.tfbackend at `terraform init`.
  backend "s3" {}
}

# Credentials from the environment: in CI, the OIDC role the workflow assumes.
provider "idis" {
  region = var.region
}

variable "environment" {
  description = "Environment name (production, staging, ...)."
  type        = string
}

variable "region" {
  description = "AWS region of the environment."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC CIDR of the environment."
  type        = string
}

variable "db_instance_class" {
  type    = string
  default = "db.r6g.xlarge"
}

variable "db_multi_az" {
  type    = bool
  default = true
}

variable "db_backup_retention" {
  type    = number
  default = 30
}

variable "eks_node_instance_type" {
  type    = string
  default = "m6i.xlarge"
}

variable "eks_node_min_count" {
  type    = number
  default = 3
}

variable "eks_node_max_count" {
  type    = number
  default = 10
}

variable "s3_versioning_enabled" {
  type    = bool
  default = true
}

variable "s3_worm_enabled" {
  type    = bool
  default = true
}

variable "enable_waf" {
  type    = bool
  default = true
}

variable "enable_ddos_protection" {
  type    = bool
  default = true
}

variable "tenants" {
  type    = list(string)
  default = ["default"]
}

variable "cache_node_type" {
  type    = string
  default = "cache.r6g.large"
}

variable "audit_retention_mode" {
  type    = string
  default = "COMPLIANCE"
}

variable "audit_retention_days" {
  type    = number
  default = 365
}

variable "deletion_protection" {
  type    = bool
  default = true
}

variable "skip_final_snapshot" {
  type    = bool
  default = false
}

module "idis" {
  # In your own repository: a git or registry source of modules/idis.
  source = "../../modules/idis"

  environment = var.environment
  region      = var.region
  vpc_cidr    = var.vpc_cidr

  db_instance_class   = var.db_instance_class
  db_multi_az         = var.db_multi_az
  db_backup_retention = var.db_backup_retention

  eks_node_instance_type = var.eks_node_instance_type
  eks_node_min_count     = var.eks_node_min_count
  eks_node_max_count     = var.eks_node_max_count

  s3_versioning_enabled = var.s3_versioning_enabled
  s3_worm_enabled       = var.s3_worm_enabled

  enable_waf             = var.enable_waf
  enable_ddos_protection = var.enable_ddos_protection

  tenants              = var.tenants
  cache_node_type      = var.cache_node_type
  audit_retention_mode = var.audit_retention_mode
  audit_retention_days = var.audit_retention_days
  deletion_protection  = var.deletion_protection
  skip_final_snapshot  = var.skip_final_snapshot
}

output "vpc_id" {
  value = module.idis.vpc_id
}

output "database_endpoint" {
  value = module.idis.database_endpoint
}

output "audit_bucket_name" {
  value = module.idis.audit_bucket_name
}
