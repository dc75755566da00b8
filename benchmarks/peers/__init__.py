"""The peers polynn is measured against, each written the way its own users would write it."""
