# --- The contract (names and types are fixed; see DESIGN.md) ---------------

variable "environment" {
  description = "Environment name: lowercase letters, digits and dashes, starting with a letter, at most 23 characters (e.g. production, staging)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([a-z0-9]|-[a-z0-9]){0,22}$", var.environment)) && length(var.environment) <= 23
    error_message = "environment must be 1 to 23 lowercase letters, digits and single dashes, starting with a letter and not ending with a dash."
  }
}

variable "region" {
  description = "AWS region of the environment, e.g. us-east-1."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as \"us-east-1\"."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC, /16 to /24, in a private range."
  type        = string
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 24, false)
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /24, e.g. \"10.0.0.0/16\"."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string
  default     = "db.r6g.xlarge"
  validation {
    condition     = can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must be an RDS instance class such as \"db.r6g.xlarge\"."
  }
}

variable "db_multi_az" {
  description = "Run the database Multi-AZ (synchronous standby in a second zone)."
  type        = bool
  default     = true
}

variable "db_backup_retention" {
  description = "Days of automated database backups (point-in-time restore window), 1 to 35."
  type        = number
  default     = 30
  validation {
    condition     = var.db_backup_retention >= 1 && var.db_backup_retention <= 35 && floor(var.db_backup_retention) == var.db_backup_retention
    error_message = "db_backup_retention must be a whole number of days from 1 to 35."
  }
}

variable "eks_node_instance_type" {
  description = "EC2 instance type of the EKS node group."
  type        = string
  default     = "m6i.xlarge"
  validation {
    condition     = can(regex("^[a-z0-9-]+\\.[a-z0-9]+$", var.eks_node_instance_type))
    error_message = "eks_node_instance_type must be an EC2 instance type such as \"m6i.xlarge\"."
  }
}

variable "eks_node_min_count" {
  description = "Minimum number of EKS nodes."
  type        = number
  default     = 3
  validation {
    condition     = var.eks_node_min_count >= 1 && floor(var.eks_node_min_count) == var.eks_node_min_count
    error_message = "eks_node_min_count must be a whole number, at least 1."
  }
}

variable "eks_node_max_count" {
  description = "Maximum number of EKS nodes; at least eks_node_min_count."
  type        = number
  default     = 10
  validation {
    condition     = var.eks_node_max_count >= 1 && var.eks_node_max_count <= 450 && floor(var.eks_node_max_count) == var.eks_node_max_count
    error_message = "eks_node_max_count must be a whole number from 1 to 450."
  }
}

variable "s3_versioning_enabled" {
  description = "Versioning of the audit bucket (required when s3_worm_enabled)."
  type        = bool
  default     = true
}

variable "s3_worm_enabled" {
  description = "S3 Object Lock (WORM) on the audit bucket. Cannot be turned off later."
  type        = bool
  default     = true
}

variable "enable_waf" {
  description = "Create the WAFv2 web ACL with AWS managed rules and a rate limit."
  type        = bool
  default     = true
}

variable "enable_ddos_protection" {
  description = "Shield protection of the environment's public entry point."
  type        = bool
  default     = true
}

# --- Optional extras --------------------------------------------------------

variable "tenants" {
  description = "Tenants; each gets its own KMS key alias/idis/<environment>/<tenant>. Removing one schedules its key for deletion."
  type        = list(string)
  default     = ["default"]
  validation {
    condition     = length(var.tenants) == length(distinct(var.tenants)) && alltrue([for t in var.tenants : can(regex("^[a-z0-9][a-z0-9-]{0,31}$", t)) && t != "platform"])
    error_message = "tenants must be unique names of 1 to 32 lowercase letters, digits and dashes (\"platform\" is reserved)."
  }
}

variable "key_deletion_window_days" {
  description = "Days a removed KMS key waits before deletion, 7 to 30."
  type        = number
  default     = 30
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version, one EKS offers in the region (checked at plan). Upgrades go one minor at a time; the nodes and add-ons follow."
  type        = string
  default     = "1.31"
}

variable "eks_endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly."
  type        = bool
  default     = false
}

variable "eks_admin_principals" {
  description = "IAM role or user ARNs that administer the EKS cluster: each gets an access entry with AmazonEKSClusterAdminPolicy at cluster scope. The cluster is created without an admin entry for whoever runs Terraform, so list that principal here if it needs Kubernetes access. Access entries nobody listed are drift and removed by apply (the ones EKS makes for node roles are left alone)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for p in var.eks_admin_principals : can(regex("^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", p))]) && length(var.eks_admin_principals) == length(distinct(var.eks_admin_principals))
    error_message = "eks_admin_principals must be distinct IAM role or user ARNs such as \"arn:aws:iam::123456789012:role/platform-admins\" (not an assumed-role session, group or root); not allowed: ${join(", ", [for p in var.eks_admin_principals : jsonencode(p) if !can(regex("^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", p))])}."
  }
}

variable "eks_viewer_principals" {
  description = "IAM role or user ARNs that may read the EKS cluster: each gets an access entry with AmazonEKSViewPolicy at cluster scope. A principal is in one of eks_admin_principals and eks_viewer_principals, not both."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for p in var.eks_viewer_principals : can(regex("^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", p))]) && length(var.eks_viewer_principals) == length(distinct(var.eks_viewer_principals))
    error_message = "eks_viewer_principals must be distinct IAM role or user ARNs such as \"arn:aws:iam::123456789012:role/support\" (not an assumed-role session, group or root); not allowed: ${join(", ", [for p in var.eks_viewer_principals : jsonencode(p) if !can(regex("^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", p))])}."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL version: a major such as \"17\" or \"16\", or a full version such as \"16.4\", one RDS offers in the region (checked at plan)."
  type        = string
  default     = "16"
}

variable "db_allocated_storage_gb" {
  description = "Database storage in GiB (can only grow)."
  type        = number
  default     = 100
}

variable "db_read_replicas" {
  description = "Number of read replicas, 0 to 5."
  type        = number
  default     = 0
  validation {
    condition     = var.db_read_replicas >= 0 && var.db_read_replicas <= 5 && floor(var.db_read_replicas) == var.db_read_replicas
    error_message = "db_read_replicas must be a whole number from 0 to 5."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the database, and so the environment."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Delete the database without a final snapshot."
  type        = bool
  default     = false
}

variable "cache_engine" {
  description = "Redis-compatible engine: \"redis\" (Redis OSS) or \"valkey\". Redis moves to Valkey in place; Valkey cannot go back."
  type        = string
  default     = "redis"
}

variable "cache_engine_version" {
  description = "Cache engine version: a major such as \"7\" or a full version such as \"7.1\" (Valkey: \"8.0\"), one ElastiCache offers in the region (checked at plan)."
  type        = string
  default     = "7"
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r6g.large"
}

variable "cache_node_count" {
  description = "Redis nodes (primary plus replicas), 2 to 6 for Multi-AZ."
  type        = number
  default     = 2
}

variable "audit_retention_mode" {
  description = "Default Object Lock mode of audit objects: COMPLIANCE or GOVERNANCE."
  type        = string
  default     = "COMPLIANCE"
  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.audit_retention_mode)
    error_message = "audit_retention_mode must be \"COMPLIANCE\" or \"GOVERNANCE\"."
  }
}

variable "audit_retention_days" {
  description = "Default retention of audit objects in days."
  type        = number
  default     = 365
}

variable "retain_audit_bucket_on_destroy" {
  description = "Keep the audit bucket when the environment is destroyed."
  type        = bool
  default     = true
}

variable "documents_noncurrent_version_expiration_days" {
  description = "Days a document version the application overwrote or deleted is kept in the documents bucket before S3 expires it, 1 to 36500."
  type        = number
  default     = 90
  validation {
    condition     = var.documents_noncurrent_version_expiration_days >= 1 && var.documents_noncurrent_version_expiration_days <= 36500 && floor(var.documents_noncurrent_version_expiration_days) == var.documents_noncurrent_version_expiration_days
    error_message = "documents_noncurrent_version_expiration_days must be a whole number of days from 1 to 36500."
  }
}

variable "retain_documents_bucket_on_destroy" {
  description = "Keep the documents bucket (the application's documents) when the environment is destroyed; when false, destroy deletes it only if it holds no object version."
  type        = bool
  default     = true
}

variable "access_log_expiration_days" {
  description = "Days the S3 server access logs of the documents and audit buckets are kept in the access-log bucket before S3 expires them, 1 to 36500."
  type        = number
  default     = 365
  validation {
    condition     = var.access_log_expiration_days >= 1 && var.access_log_expiration_days <= 36500 && floor(var.access_log_expiration_days) == var.access_log_expiration_days
    error_message = "access_log_expiration_days must be a whole number of days from 1 to 36500."
  }
}

variable "app_secrets_recovery_window_days" {
  description = "Days IDIS_JWT_SECRET and IDIS_ENCRYPTION_KEY can still be restored after a destroy schedules their deletion, 7 to 30."
  type        = number
  default     = 30
  validation {
    condition     = var.app_secrets_recovery_window_days >= 7 && var.app_secrets_recovery_window_days <= 30 && floor(var.app_secrets_recovery_window_days) == var.app_secrets_recovery_window_days
    error_message = "app_secrets_recovery_window_days must be a whole number of days from 7 to 30."
  }
}

variable "app_namespace" {
  description = "Kubernetes namespace of the application: its API and worker service account, the external-secrets SecretStore and ExternalSecret, and the ConfigMap of kubernetes_manifests."
  type        = string
  default     = "idis"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "app_namespace must be a Kubernetes namespace name: 1 to 63 lowercase letters, digits and dashes, starting and ending with a letter or digit."
  }
}

variable "api_service_account" {
  description = "Service account (in app_namespace) of the API and workers: the only one the API's IAM role trusts."
  type        = string
  default     = "idis-api"
  validation {
    condition     = length(var.api_service_account) <= 253 && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", var.api_service_account))
    error_message = "api_service_account must be a Kubernetes service account name: lowercase letters, digits, dashes and dots, starting and ending with a letter or digit, at most 253 characters."
  }
}

variable "external_secrets_service_account" {
  description = "Service account (in app_namespace) the external-secrets SecretStore authenticates as: the only one the external-secrets IAM role trusts."
  type        = string
  default     = "idis-external-secrets"
  validation {
    condition     = length(var.external_secrets_service_account) <= 253 && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", var.external_secrets_service_account))
    error_message = "external_secrets_service_account must be a Kubernetes service account name: lowercase letters, digits, dashes and dots, starting and ending with a letter or digit, at most 253 characters."
  }
}

variable "load_balancer_controller_namespace" {
  description = "Namespace of the AWS Load Balancer Controller."
  type        = string
  default     = "kube-system"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.load_balancer_controller_namespace))
    error_message = "load_balancer_controller_namespace must be a Kubernetes namespace name: 1 to 63 lowercase letters, digits and dashes, starting and ending with a letter or digit."
  }
}

variable "load_balancer_controller_service_account" {
  description = "Service account of the AWS Load Balancer Controller: the only one its IAM role trusts."
  type        = string
  default     = "aws-load-balancer-controller"
  validation {
    condition     = length(var.load_balancer_controller_service_account) <= 253 && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", var.load_balancer_controller_service_account))
    error_message = "load_balancer_controller_service_account must be a Kubernetes service account name: lowercase letters, digits, dashes and dots, starting and ending with a letter or digit, at most 253 characters."
  }
}

variable "cluster_autoscaler_namespace" {
  description = "Namespace of the cluster autoscaler."
  type        = string
  default     = "kube-system"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.cluster_autoscaler_namespace))
    error_message = "cluster_autoscaler_namespace must be a Kubernetes namespace name: 1 to 63 lowercase letters, digits and dashes, starting and ending with a letter or digit."
  }
}

variable "cluster_autoscaler_service_account" {
  description = "Service account of the cluster autoscaler: the only one its IAM role trusts."
  type        = string
  default     = "cluster-autoscaler"
  validation {
    condition     = length(var.cluster_autoscaler_service_account) <= 253 && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", var.cluster_autoscaler_service_account))
    error_message = "cluster_autoscaler_service_account must be a Kubernetes service account name: lowercase letters, digits, dashes and dots, starting and ending with a letter or digit, at most 253 characters."
  }
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP before the WAF blocks it."
  type        = number
  default     = 2000
}

variable "cdn_origin_domain" {
  description = "The API's public name (e.g. its load balancer's): the origin of the CloudFront distribution, for /api/* when cdn is true. No distribution when null and cdn is false."
  type        = string
  default     = null
}

variable "cdn" {
  description = "Serve the UI's static build through CloudFront: a private, encrypted, versioned assets bucket that only the distribution may read (Origin Access Control) as the default origin, cdn_origin_domain for /api/*, HTTPS only, the managed security headers policy, access logs to a log bucket, the CLOUDFRONT-scope web ACL with enable_waf. Outputs cdn_domain_name and assets_bucket_name."
  type        = bool
  default     = false
}

variable "cdn_aliases" {
  description = "Other names of the distribution (e.g. app.example.com); they need cdn_certificate_arn."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for a in var.cdn_aliases : can(regex("^([a-z0-9*]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", a))])
    error_message = "cdn_aliases must be DNS names such as \"app.example.com\"; not allowed: ${join(", ", [for a in var.cdn_aliases : jsonencode(a) if !can(regex("^([a-z0-9*]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", a))])}."
  }
}

variable "cdn_certificate_arn" {
  description = "ACM certificate ARN in us-east-1 (CloudFront takes certificates from there only) for cdn_aliases. The default *.cloudfront.net certificate when null."
  type        = string
  default     = null
  validation {
    condition     = var.cdn_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/.+$", var.cdn_certificate_arn))
    error_message = "cdn_certificate_arn must be an ACM certificate ARN in us-east-1 such as \"arn:aws:acm:us-east-1:123456789012:certificate/...\"."
  }
}

variable "tags" {
  description = "Tags for every AWS object of the environment."
  type        = map(string)
  default     = {}
}

# Monitoring (issue 16)

variable "alarm_emails" {
  description = "E-mail addresses the alarm topic notifies (each confirms the subscription SNS sends it)."
  type        = list(string)
  default     = []
}

variable "alarm_webhooks" {
  description = "HTTPS URLs the alarm topic posts to (SNS https subscriptions, e.g. a paging service's SNS integration URL). Plain http is refused."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the environment's log groups (EKS control plane, RDS postgresql and upgrade exports, ElastiCache slow and engine logs, VPC flow log); each group is encrypted with the platform key. One of the values CloudWatch Logs accepts (checked at plan): 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  type        = number
  default     = 90
}

variable "alarm_thresholds" {
  description = "Alarm thresholds by name, each optional (the provider's default otherwise): database_cpu_percent (80), database_free_storage_percent (10), database_freeable_memory_mb (256), database_connections (1000), replica_lag_seconds (5), cache_cpu_percent (90), cache_memory_percent (80), cache_evictions (100), cache_replication_lag_seconds (5), cache_connections (5000), cdn_5xx_rate_percent (5), waf_blocked_requests (1000). Ranges are checked at plan."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.alarm_thresholds) : contains(["database_cpu_percent", "database_free_storage_percent", "database_freeable_memory_mb", "database_connections", "replica_lag_seconds", "cache_cpu_percent", "cache_memory_percent", "cache_evictions", "cache_replication_lag_seconds", "cache_connections", "cdn_5xx_rate_percent", "waf_blocked_requests"], k)])
    error_message = "alarm_thresholds takes only database_cpu_percent, database_free_storage_percent, database_freeable_memory_mb, database_connections, replica_lag_seconds, cache_cpu_percent, cache_memory_percent, cache_evictions, cache_replication_lag_seconds, cache_connections, cdn_5xx_rate_percent and waf_blocked_requests."
  }
}

variable "datadog" {
  description = "Datadog's AWS integration: the external_id from Datadog's AWS integration page, and Datadog's AWS account (464622532012 for the commercial sites; give Datadog's GovCloud account for that site). Makes the role Datadog assumes; its ARN is the datadog_role_arn output. Null: no role."
  type = object({
    external_id    = string
    aws_account_id = optional(string, "464622532012")
  })
  default = null
}

variable "newrelic" {
  description = "New Relic's AWS integration (API polling): external_id is your New Relic account id; New Relic's AWS account is 754728514883. Makes the role New Relic assumes; its ARN is the newrelic_role_arn output. Null: no role."
  type = object({
    external_id    = string
    aws_account_id = optional(string, "754728514883")
  })
  default = null
}

variable "dr_region" {
  description = "Region of the disaster-recovery site (pilot light: network, replica keys, a cross-Region read replica of the database, replicated copies of the audit and documents buckets, the RPO alarm). Null: no DR site; setting it back to null tears the DR site down and keeps the bucket copies."
  type        = string
  default     = null
}

variable "dr_vpc_cidr" {
  description = "IPv4 CIDR of the DR site's VPC, /16 to /24; apart from vpc_cidr so the two can be peered."
  type        = string
  default     = "10.1.0.0/16"
}

variable "dr_rpo_seconds_target" {
  description = "Recovery point objective in seconds: the DR replica's lag alarm fires above it (60 to 3600; REQ-T237 asks under 300)."
  type        = number
  default     = 300
  validation {
    condition     = var.dr_rpo_seconds_target >= 60 && var.dr_rpo_seconds_target <= 3600 && floor(var.dr_rpo_seconds_target) == var.dr_rpo_seconds_target
    error_message = "dr_rpo_seconds_target must be a whole number of seconds from 60 to 3600."
  }
}

variable "dr_nat_gateway" {
  description = "One NAT gateway in the DR network before promotion. False (pilot light): the DR site's private subnets have no route out until promotion, which gives every zone one as the primary has."
  type        = bool
  default     = false
}

variable "dr_promote" {
  description = "Promote the DR site (one way): its database stops replicating and serves, the database and cache are built up in the DR region, and app_config points there. See the README's DR runbook."
  type        = bool
  default     = false
}
