terraform {
  required_version = ">= 1.5"
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
  }
}
