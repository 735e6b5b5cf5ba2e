terraform {
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
  }
}

provider "idis" {}

# Adopt one environment by its identity instead of an id string
# (Terraform 1.12+).
import {
  to       = idis_environment.staging
  identity = { name = "staging", region = "us-east-1" }
}

resource "idis_environment" "staging" {
  name = "staging"
}
