# One IDIS environment: network, keys, EKS, PostgreSQL, Redis, the WORM
# audit bucket, the documents bucket, the application's secrets, workload
# identity, the edge and monitoring, as one idis_environment resource.

resource "idis_environment" "this" {
  name   = var.environment
  region = var.region
  # No tags is null, not {}: an imported environment then plans clean.
  tags = length(var.tags) > 0 ? var.tags : null

  network {
    vpc_cidr = var.vpc_cidr
  }

  keys {
    tenants              = var.tenants
    deletion_window_days = var.key_deletion_window_days
  }

  cluster {
    kubernetes_version     = var.kubernetes_version
    endpoint_public_access = var.eks_endpoint_public_access
    node_instance_types    = [var.eks_node_instance_type]
    node_min_size          = var.eks_node_min_count
    node_max_size          = var.eks_node_max_count
    admin_principals       = var.eks_admin_principals
    viewer_principals      = var.eks_viewer_principals
  }

  database {
    engine_version        = var.db_engine_version
    instance_class        = var.db_instance_class
    multi_az              = var.db_multi_az
    allocated_storage_gb  = var.db_allocated_storage_gb
    backup_retention_days = var.db_backup_retention
    read_replicas         = var.db_read_replicas
    deletion_protection   = var.deletion_protection
    skip_final_snapshot   = var.skip_final_snapshot
  }

  cache {
    engine         = var.cache_engine
    engine_version = var.cache_engine_version
    node_type      = var.cache_node_type
    node_count     = var.cache_node_count
  }

  audit_storage {
    versioning        = var.s3_versioning_enabled
    worm              = var.s3_worm_enabled
    retention_mode    = var.audit_retention_mode
    retention_days    = var.audit_retention_days
    retain_on_destroy = var.retain_audit_bucket_on_destroy
  }

  documents_storage {
    noncurrent_version_expiration_days = var.documents_noncurrent_version_expiration_days
    retain_on_destroy                  = var.retain_documents_bucket_on_destroy
  }

  audit_trail {
    log_expiration_days = var.access_log_expiration_days
  }

  dr {
    region      = var.dr_region
    vpc_cidr    = var.dr_vpc_cidr
    rpo_seconds = var.dr_rpo_seconds_target
    nat_gateway = var.dr_nat_gateway
    promote     = var.dr_promote
  }

  app_secrets {
    recovery_window_days = var.app_secrets_recovery_window_days
  }

  workload_identity {
    namespace                                = var.app_namespace
    api_service_account                      = var.api_service_account
    external_secrets_service_account         = var.external_secrets_service_account
    load_balancer_controller_namespace       = var.load_balancer_controller_namespace
    load_balancer_controller_service_account = var.load_balancer_controller_service_account
    cluster_autoscaler_namespace             = var.cluster_autoscaler_namespace
    cluster_autoscaler_service_account       = var.cluster_autoscaler_service_account
  }

  edge {
    waf             = var.enable_waf
    ddos_protection = var.enable_ddos_protection
    rate_limit      = var.waf_rate_limit
    origin_domain   = var.cdn_origin_domain
    cdn             = var.cdn
    aliases         = var.cdn_aliases
    certificate_arn = var.cdn_certificate_arn
  }

  monitoring {
    alarm_emails                  = var.alarm_emails
    alarm_webhooks                = var.alarm_webhooks
    log_retention_days            = var.log_retention_days
    database_cpu_percent          = lookup(var.alarm_thresholds, "database_cpu_percent", null)
    database_free_storage_percent = lookup(var.alarm_thresholds, "database_free_storage_percent", null)
    database_freeable_memory_mb   = lookup(var.alarm_thresholds, "database_freeable_memory_mb", null)
    database_connections          = lookup(var.alarm_thresholds, "database_connections", null)
    replica_lag_seconds           = lookup(var.alarm_thresholds, "replica_lag_seconds", null)
    cache_cpu_percent             = lookup(var.alarm_thresholds, "cache_cpu_percent", null)
    cache_memory_percent          = lookup(var.alarm_thresholds, "cache_memory_percent", null)
    cache_evictions               = lookup(var.alarm_thresholds, "cache_evictions", null)
    cache_replication_lag_seconds = lookup(var.alarm_thresholds, "cache_replication_lag_seconds", null)
    cache_connections             = lookup(var.alarm_thresholds, "cache_connections", null)
    cdn_5xx_rate_percent          = lookup(var.alarm_thresholds, "cdn_5xx_rate_percent", null)
    waf_blocked_requests          = lookup(var.alarm_thresholds, "waf_blocked_requests", null)
    datadog                       = var.datadog
    newrelic                      = var.newrelic
  }

  lifecycle {
    precondition {
      condition     = var.eks_node_min_count <= var.eks_node_max_count
      error_message = "eks_node_min_count (${var.eks_node_min_count}) must not exceed eks_node_max_count (${var.eks_node_max_count})."
    }
    precondition {
      condition     = !var.s3_worm_enabled || var.s3_versioning_enabled
      error_message = "s3_worm_enabled requires s3_versioning_enabled = true: S3 Object Lock needs versioning."
    }
  }
}
