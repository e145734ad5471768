import sys

from bioart_pipeline.pretraining.base_model import main

sys.exit(main())
