"""Start the diffusion explorer: `python app.py` (also the Hugging Face Space's app_file)."""
from explorer.app import demo, launch

__all__ = ["demo"]

if __name__ == "__main__":
    launch()
