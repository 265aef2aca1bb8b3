"""Readers for medical images: DICOM series/files, NIfTI, NRRD, PNG/JPEG X-rays, PET SUV."""
