# Short-lived credentials for an environment another stack (or this one)
# owns, never stored in state or plan (Terraform 1.10+): the kubernetes
# provider configured against the cluster, and the database master user
# for a migration job. tests/test_ephemeral.py runs the same resources
# against the emulator with a local-exec consumer.
terraform {
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "~> 0.1.0"
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
    }
  }
}

provider "idis" {}

ephemeral "idis_cluster_auth" "production" {
  name = "production"
}

provider "kubernetes" {
  host                   = ephemeral.idis_cluster_auth.production.endpoint
  cluster_ca_certificate = base64decode(ephemeral.idis_cluster_auth.production.certificate_authority_data)
  token                  = ephemeral.idis_cluster_auth.production.token
}

ephemeral "idis_database_credentials" "production" {
  name = "production"
}

resource "kubernetes_namespace" "idis" {
  metadata {
    name = "idis"
  }
}

# The database URL reaches a one-off job through a provisioner, which may
# use ephemeral values; it is in neither state nor plan.
resource "terraform_data" "migrate" {
  provisioner "local-exec" {
    command = "idis-migrate"
    environment = {
      IDIS_DATABASE_URL = ephemeral.idis_database_credentials.production.url
    }
  }
}
