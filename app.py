"""Start the diffusion explorer: `python app.py` (also the Hugging Face Space's app_file)."""
from explorer.threads import configure_threads

configure_threads("passive")  # before torch loads: a served app waits passively (explorer/threads.py says why)

from explorer.app import demo, launch  # noqa: E402

__all__ = ["demo"]

if __name__ == "__main__":
    launch()
