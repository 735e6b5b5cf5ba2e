output "environment" {
  description = "Environment name."
  value       = idis_environment.this.name
}

output "region" {
  description = "AWS region."
  value       = idis_environment.this.region
}

output "vpc_id" {
  description = "VPC id."
  value       = idis_environment.this.vpc_id
}

output "availability_zones" {
  description = "The three availability zones."
  value       = idis_environment.this.network.availability_zones
}

output "public_subnet_ids" {
  description = "Public subnet ids, in zone order."
  value       = idis_environment.this.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Private subnet ids, in zone order."
  value       = idis_environment.this.private_subnet_ids
}

output "platform_key_arn" {
  description = "Platform KMS key ARN."
  value       = idis_environment.this.platform_key_arn
}

output "tenant_key_arns" {
  description = "Tenant name to KMS key ARN."
  value       = idis_environment.this.tenant_key_arns
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = idis_environment.this.cluster_name
}

output "cluster_arn" {
  description = "EKS cluster ARN."
  value       = idis_environment.this.cluster_arn
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = idis_environment.this.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the Kubernetes API."
  value       = idis_environment.this.cluster_certificate_authority_data
}

output "cluster_oidc_issuer_url" {
  description = "OIDC issuer URL for IAM roles for service accounts."
  value       = idis_environment.this.cluster_oidc_issuer_url
}

output "node_group_arn" {
  description = "EKS managed node group ARN."
  value       = idis_environment.this.node_group_arn
}

output "database_endpoint" {
  description = "PostgreSQL host."
  value       = idis_environment.this.database_endpoint
}

output "database_port" {
  description = "PostgreSQL port."
  value       = idis_environment.this.database_port
}

output "database_arn" {
  description = "RDS instance ARN."
  value       = idis_environment.this.database_arn
}

output "database_master_secret_arn" {
  description = "Secrets Manager ARN of the master credentials (kept by AWS)."
  value       = idis_environment.this.database_master_secret_arn
}

output "database_replica_endpoints" {
  description = "Read replica hosts."
  value       = idis_environment.this.database_replica_endpoints
}

output "cache_primary_endpoint" {
  description = "Redis primary endpoint."
  value       = idis_environment.this.cache_primary_endpoint
}

output "cache_reader_endpoint" {
  description = "Redis reader endpoint."
  value       = idis_environment.this.cache_reader_endpoint
}

output "cache_auth_secret_arn" {
  description = "Secrets Manager ARN of the Redis auth token."
  value       = idis_environment.this.cache_auth_secret_arn
}

output "audit_bucket_name" {
  description = "Audit bucket name."
  value       = idis_environment.this.audit_bucket_name
}

output "audit_bucket_arn" {
  description = "Audit bucket ARN."
  value       = idis_environment.this.audit_bucket_arn
}

output "documents_bucket_name" {
  description = "Documents bucket name (IDIS_S3_BUCKET)."
  value       = idis_environment.this.documents_bucket_name
}

output "documents_bucket_arn" {
  description = "Documents bucket ARN."
  value       = idis_environment.this.documents_bucket_arn
}

output "access_log_bucket_name" {
  description = "Bucket holding the S3 server access logs of the documents and audit buckets."
  value       = idis_environment.this.access_log_bucket_name
}

output "access_log_bucket_arn" {
  description = "Access-log bucket ARN."
  value       = idis_environment.this.access_log_bucket_arn
}

output "audit_trail_arn" {
  description = "ARN of the CloudTrail trail of the data events (idis-<environment>-data-events), delivering to the audit bucket under cloudtrail/."
  value       = idis_environment.this.audit_trail_arn
}

output "jwt_secret_arn" {
  description = "Secrets Manager ARN of IDIS_JWT_SECRET (JSON kid and secret)."
  value       = idis_environment.this.jwt_secret_arn
}

output "encryption_key_secret_arn" {
  description = "Secrets Manager ARN of IDIS_ENCRYPTION_KEY (AES-256 key, base64)."
  value       = idis_environment.this.encryption_key_secret_arn
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  value       = idis_environment.this.oidc_provider_arn
}

output "api_role_arn" {
  description = "IAM role of the API and workers (eks.amazonaws.com/role-arn of their service account)."
  value       = idis_environment.this.api_role_arn
}

output "external_secrets_role_arn" {
  description = "IAM role the external-secrets SecretStore reads the environment's secrets with."
  value       = idis_environment.this.external_secrets_role_arn
}

output "load_balancer_controller_role_arn" {
  description = "IAM role of the AWS Load Balancer Controller."
  value       = idis_environment.this.load_balancer_controller_role_arn
}

output "ebs_csi_driver_role_arn" {
  description = "IAM role of the EBS CSI driver add-on."
  value       = idis_environment.this.ebs_csi_driver_role_arn
}

output "cluster_autoscaler_role_arn" {
  description = "IAM role of the cluster autoscaler."
  value       = idis_environment.this.cluster_autoscaler_role_arn
}

output "web_acl_arn" {
  description = "WAFv2 web ACL ARN (null without WAF)."
  value       = idis_environment.this.web_acl_arn
}

output "web_acl_associations" {
  description = "Load balancers the regional web ACL is attached to, as WAF lists them (the ingress controller attaches them through ingress_annotations)."
  value       = idis_environment.this.web_acl_associations
}

output "ingress_annotations" {
  description = "Annotations for the platform's Kubernetes ingress: the AWS Load Balancer Controller attaches the regional web ACL and turns on Shield Advanced for its load balancer."
  value       = idis_environment.this.ingress_annotations
}

output "shield_protection_id" {
  description = "Shield protection id of the CloudFront distribution (null without DDoS protection or without a distribution)."
  value       = idis_environment.this.shield_protection_id
}

output "cdn_domain_name" {
  description = "CloudFront domain name (null without cdn or cdn_origin_domain)."
  value       = idis_environment.this.cdn_domain_name
}

output "assets_bucket_name" {
  description = "The static-assets bucket behind the CDN, for the UI's deploy job (null without cdn)."
  value       = idis_environment.this.cdn_assets_bucket_name
}

output "cdn_web_acl_arn" {
  description = "CLOUDFRONT-scope web ACL (us-east-1) in front of the distribution (null without WAF or without a distribution)."
  value       = idis_environment.this.cdn_web_acl_arn
}

output "app_config" {
  description = "Non-secret IDIS_* settings for the application's ConfigMap."
  value       = idis_environment.this.app_config
}

output "secret_refs" {
  description = "Secret IDIS_* settings mapped to Secrets Manager ARNs: IDIS_DATABASE_URL, IDIS_REDIS_URL, IDIS_JWT_SECRET, IDIS_ENCRYPTION_KEY (and the raw database credentials and Redis auth token)."
  value       = idis_environment.this.secret_refs
}

output "kubernetes_manifests" {
  description = "Kubernetes manifests (YAML) that deliver the settings to the application: config_map, service_account, external_secrets_service_account, secret_store, external_secret. No secret value is in them."
  value       = idis_environment.this.kubernetes_manifests
}

output "alarm_topic_arn" {
  description = "ARN of the alarm topic (SNS, encrypted with the platform key) every alarm of the environment notifies."
  value       = idis_environment.this.alarm_topic_arn
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard idis-<environment>: a row per component, a graph per metric the alarms watch, each threshold drawn as a line."
  value       = idis_environment.this.dashboard_url
}

output "datadog_role_arn" {
  description = "ARN of the IAM role Datadog's AWS integration assumes (null without var.datadog)."
  value       = idis_environment.this.datadog_role_arn
}

output "newrelic_role_arn" {
  description = "ARN of the IAM role New Relic's AWS integration assumes (null without var.newrelic)."
  value       = idis_environment.this.newrelic_role_arn
}

output "dr_vpc_id" {
  description = "ID of the DR site's VPC; null without dr_region."
  value       = idis_environment.this.dr_vpc_id
}

output "dr_platform_key_arn" {
  description = "ARN of the platform key's multi-Region replica in the DR region."
  value       = idis_environment.this.dr_platform_key_arn
}

output "dr_database_arn" {
  description = "ARN of the DR database (the cross-Region read replica; standalone once promoted)."
  value       = idis_environment.this.dr_database_arn
}

output "dr_database_endpoint" {
  description = "Endpoint address of the DR database."
  value       = idis_environment.this.dr_database_endpoint
}

output "dr_audit_bucket_name" {
  description = "The audit bucket's copy in the DR region (Object Lock, the source's retention)."
  value       = idis_environment.this.dr_audit_bucket_name
}

output "dr_documents_bucket_name" {
  description = "The documents bucket's copy in the DR region."
  value       = idis_environment.this.dr_documents_bucket_name
}

output "dr_replication_role_arn" {
  description = "IAM role S3 replicates the buckets with."
  value       = idis_environment.this.dr_replication_role_arn
}

output "dr_alarm_topic_arn" {
  description = "The DR region's alarm topic, which the RPO alarm notifies; subscribe the on-call rotation to it."
  value       = idis_environment.this.dr_alarm_topic_arn
}

output "dr_cluster_endpoint" {
  description = "Kubernetes API server endpoint of the EKS cluster in the DR region (null until dr_promote)."
  value       = idis_environment.this.dr_cluster_endpoint
}
