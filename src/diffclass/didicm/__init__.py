"""DiDiCM: discrete diffusion over the class label, conditioned on the image (Belhasin et al.)."""
