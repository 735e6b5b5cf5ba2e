# The production contract (DESIGN.md) with its state kept remotely: in an
# S3 bucket, locked through a DynamoDB table, so that two people (or a
# person and the daily drift job) never apply at once. See README.md for
# creating the bucket and the table, and for running it against moto.
terraform {
  # Partial configuration: the settings that differ between AWS and an
  # emulator (endpoints, credentials checks) come from
  # `terraform init -backend-config=FILE` (see moto.s3.tfbackend).
  backend "s3" {
    bucket = "idis-terraform-state"
    key    = "idis/production/terraform.tfstate"
    region = "us-east-1"
    # Locking: a conditional PutItem on this table (hash key LockID, a
    # string). Terraform 1.11 also offers S3-native locking
    # (use_lockfile = true); the DynamoDB table is what the platform's
    # contract asks for and works with every Terraform since 0.9.
    dynamodb_table = "idis-terraform-locks"
    encrypt        = true
  }

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

output "tenant_key_arns" {
  value = module.idis_production.tenant_key_arns
}

output "web_acl_arn" {
  value = module.idis_production.web_acl_arn
}

output "app_config" {
  value = module.idis_production.app_config
}

output "secret_refs" {
  value = module.idis_production.secret_refs
}
