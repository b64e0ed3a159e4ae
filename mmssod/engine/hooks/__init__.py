from .cropbank_hook import CropBank, CropBankHook  # noqa: F401
