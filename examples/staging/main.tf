# A cheaper staging environment: same shape, smaller sizes, single NAT-free
# choices left at production defaults where safety matters. It shares no
# keys or secrets with production (everything derives from its name).
terraform {
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
  }
}

provider "idis" {}

module "idis_staging" {
  source = "../../modules/idis"

  environment = "staging"
  region      = "us-east-1"
  vpc_cidr    = "10.1.0.0/16"

  db_instance_class   = "db.t4g.medium"
  db_multi_az         = false
  db_backup_retention = 7

  eks_node_instance_type = "t3.large"
  eks_node_min_count     = 1
  eks_node_max_count     = 3

  s3_versioning_enabled = true
  s3_worm_enabled       = true

  enable_waf             = true
  enable_ddos_protection = false

  tenants              = ["acme"]
  cache_node_type      = "cache.t4g.small"
  audit_retention_mode = "GOVERNANCE"
  audit_retention_days = 30
  deletion_protection  = false
  skip_final_snapshot  = true
}

output "app_config" {
  value = module.idis_staging.app_config
}
