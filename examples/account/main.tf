# Reads the account, region and availability zones the provider sees.
# `make demo` applies this against a local AWS emulator.
terraform {
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
  }
}

# No arguments: region, credentials and endpoint come from the standard
# AWS environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...).
provider "idis" {}

data "idis_account" "current" {}

output "account_id" {
  value = data.idis_account.current.account_id
}

output "partition" {
  value = data.idis_account.current.partition
}

output "region" {
  value = data.idis_account.current.region
}

output "availability_zones" {
  value = data.idis_account.current.availability_zones
}
