# Smaller and cheaper; no keys, secrets or state shared with production.
environment = "staging"
region      = "us-east-1"
vpc_cidr    = "10.1.0.0/16"

db_instance_class   = "db.t4g.medium"
db_multi_az         = false
db_backup_retention = 7

eks_node_instance_type = "t3.large"
eks_node_min_count     = 1
eks_node_max_count     = 3

enable_ddos_protection = false

tenants              = ["acme"]
cache_node_type      = "cache.t4g.small"
audit_retention_mode = "GOVERNANCE"
audit_retention_days = 30
deletion_protection  = false
skip_final_snapshot  = true
