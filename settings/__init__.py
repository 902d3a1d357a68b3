"""The configuration schemas (pydantic): the pipeline configuration (pipeline; its shared base in sections, the
training sections in training) and the sweep configuration (sweep). configs/*.yaml are what they validate."""
