"""The device the app's networks run on: cuda, then mps, then cpu (explorer.training.pick_device("auto"))."""
from explorer.training import pick_device

DEVICE = pick_device("auto")
