"""What the AMI and ESL simulators share: plumbing that knows no PBX protocol."""
