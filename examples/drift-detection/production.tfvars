# The production contract (DESIGN.md).
environment = "production"
region      = "us-east-1"
vpc_cidr    = "10.0.0.0/16"

db_instance_class   = "db.r6g.xlarge"
db_multi_az         = true
db_backup_retention = 30

eks_node_instance_type = "m6i.xlarge"
eks_node_min_count     = 3
eks_node_max_count     = 10

s3_versioning_enabled = true
s3_worm_enabled       = true

enable_waf             = true
enable_ddos_protection = true

tenants = ["acme", "globex"]
