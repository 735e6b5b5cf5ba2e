# `terraform query` (Terraform 1.14+): every IDIS environment of a region,
# by the ownership tags of its AWS objects. With -generate-config-out it
# writes an import block (by identity) and a resource block for each:
#
#   terraform query -generate-config-out=environments.tf
#   terraform plan     # N to import, 0 to change
list "idis_environment" "all" {
  provider         = idis
  include_resource = true

  config {
    region = "us-east-1"
  }
}
