"""De-identification of exported DICOM following PS3.15 Annex E (Basic Application Level
Confidentiality Profile).

Why a class with state: a SEG and the images it references must stay linked after
de-identification, so every UID is replaced through one mapping (same input UID → same output UID
within a :class:`Deidentifier`), and the mapping can be reused for several exports of one study.
The action table is the profile's subset that occurs in CT/MR/PET/CR/SEG objects; private tags,
overlays and curves are removed as the profile requires. Options from Annex E that we support:
*Retain UIDs* (``retain_uids=True``) and *Retain Longitudinal Temporal Information* (dates kept,
``retain_dates=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid

# Action codes of PS3.15 Table E.1-1: X remove, Z replace by empty, D replace by dummy, U new UID.
# Keyword → action. (Where the table allows "Z/D" or "X/Z" we use the stricter choice that keeps
# the object valid: type-2 attributes are emptied, type-3 removed.)
BASIC_PROFILE: dict[str, str] = {
    # Patient
    "PatientName": "D",
    "PatientID": "D",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientSex": "Z",
    "PatientAge": "X",
    "PatientSize": "X",
    "PatientWeight": "X",
    "PatientAddress": "X",
    "PatientTelephoneNumbers": "X",
    "PatientMotherBirthName": "X",
    "OtherPatientIDs": "X",
    "OtherPatientNames": "X",
    "OtherPatientIDsSequence": "X",
    "IssuerOfPatientID": "X",
    "PatientComments": "X",
    "PatientBirthName": "X",
    "PatientReligiousPreference": "X",
    "EthnicGroup": "X",
    "Occupation": "X",
    "MilitaryRank": "X",
    "BranchOfService": "X",
    "MedicalRecordLocator": "X",
    "AdditionalPatientHistory": "X",
    "PregnancyStatus": "X",
    "CountryOfResidence": "X",
    "RegionOfResidence": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X",
    # Study / visit
    "AccessionNumber": "Z",
    "StudyID": "Z",
    "StudyDate": "Z",
    "StudyTime": "Z",
    "SeriesDate": "X",
    "SeriesTime": "X",
    "AcquisitionDate": "X",
    "AcquisitionTime": "X",
    "AcquisitionDateTime": "X",
    "ContentDate": "Z",
    "ContentTime": "Z",
    "InstanceCreationDate": "X",
    "InstanceCreationTime": "X",
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "PhysiciansOfRecord": "X",
    "PerformingPhysicianName": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "OperatorsName": "X",
    "RequestingPhysician": "X",
    "AdmittingDiagnosesDescription": "X",
    "StudyComments": "X",
    "RequestAttributesSequence": "X",
    "ReferencedStudySequence": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X",
    "PerformedProcedureStepID": "X",
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepDescription": "X",
    "RequestedProcedureID": "X",
    "ScheduledProcedureStepID": "X",
    "ImageComments": "X",
    "ContentCreatorName": "Z",
    # Equipment / institution
    "InstitutionName": "X",
    "InstitutionAddress": "X",
    "InstitutionalDepartmentName": "X",
    "StationName": "X",
    "DeviceSerialNumber": "X",
    "ProtocolName": "X",
    # UIDs (kept consistent through the mapping)
    "StudyInstanceUID": "U",
    "SeriesInstanceUID": "U",
    "SOPInstanceUID": "U",
    "FrameOfReferenceUID": "U",
    "ReferencedSOPInstanceUID": "U",
    "ReferencedFrameOfReferenceUID": "U",
    "IrradiationEventUID": "U",
    "MediaStorageSOPInstanceUID": "U",
    "DimensionOrganizationUID": "U",
    "SynchronizationFrameOfReferenceUID": "U",
    "StorageMediaFileSetUID": "U",
    "UID": "U",
    "TrackingUID": "U",
}

_DATE_ACTIONS = {"StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
                 "AcquisitionDateTime", "ContentDate", "ContentTime", "InstanceCreationDate",
                 "InstanceCreationTime"}


@dataclass
class Deidentifier:
    """Applies the basic profile in place; one instance per exported study keeps UIDs linked."""

    patient_name: str = "ANONYMOUS"
    patient_id: str = "ANON0001"
    retain_uids: bool = False
    retain_dates: bool = False
    uid_map: dict[str, str] = field(default_factory=dict)

    def map_uid(self, uid: str) -> str:
        """Same input → same replacement; well-known (SOP class, transfer syntax) UIDs are kept."""
        if not uid or self.retain_uids or uid.startswith("1.2.840.10008."):
            return uid
        if uid not in self.uid_map:
            self.uid_map[uid] = generate_uid()
        return self.uid_map[uid]

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place (and return it)."""
        ds.remove_private_tags()
        self._walk(ds)
        for group in (0x5000, 0x6000):  # curves and overlays (may burn in identifiers)
            for elem in list(ds):
                if elem.tag.group & 0xFF00 == group:
                    del ds[elem.tag]
        if hasattr(ds, "file_meta") and "MediaStorageSOPInstanceUID" in ds.file_meta:
            ds.file_meta.MediaStorageSOPInstanceUID = UID(self.map_uid(str(ds.file_meta.MediaStorageSOPInstanceUID)))
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "DICOM PS3.15 Basic Application Level Confidentiality Profile"
        methods = [("113100", "Basic Application Confidentiality Profile")]
        if self.retain_uids:
            methods.append(("113110", "Retain UIDs Option"))
        if self.retain_dates:
            methods.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
        items = []
        for value, meaning in methods:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = items
        return ds

    def _walk(self, ds: Dataset) -> None:
        for elem in list(ds):
            if elem.VR == "SQ":
                for item in elem.value:
                    self._walk(item)
            keyword = elem.keyword
            action = BASIC_PROFILE.get(keyword)
            if action is None or (self.retain_dates and keyword in _DATE_ACTIONS):
                continue
            if action == "X":
                del ds[elem.tag]
            elif action == "Z":
                elem.value = ""
            elif action == "D":
                elem.value = self.patient_id if keyword == "PatientID" else self.patient_name
            elif action == "U":
                if elem.VM > 1:
                    elem.value = [self.map_uid(str(v)) for v in elem.value]
                elif elem.value:
                    elem.value = self.map_uid(str(elem.value))
