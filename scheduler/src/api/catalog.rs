//! CatalogService: instance types and images. Reads for any token, writes for cluster
//! tokens only.

use gantry_proto::convert;
use gantry_proto::v1::catalog_service_server::CatalogService;
use gantry_proto::v1::*;
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::status;
use crate::state::{Applied, CommandV1};

pub struct CatalogApi(pub ApiContext);

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(skip_all)]
    async fn put_instance_type(&self, req: Request<PutInstanceTypeRequest>) -> Result<Response<InstanceType>, Status> {
        self.0.auth.authenticate(&req)?.authorize_cluster()?;
        let wire =
            req.into_inner().instance_type.ok_or_else(|| Status::invalid_argument("instance_type: is required"))?;
        let instance_type = convert::instance_type_from_wire(&wire).map_err(status::invalid)?;
        match self.0.write(CommandV1::PutInstanceType { instance_type }).await? {
            Applied::InstanceType(it) => Ok(Response::new(convert::instance_type_to_wire(&it))),
            other => Err(unexpected(other)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn list_instance_types(
        &self,
        req: Request<ListInstanceTypesRequest>,
    ) -> Result<Response<ListInstanceTypesResponse>, Status> {
        self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let instance_types = state.instance_types.values().map(convert::instance_type_to_wire).collect();
        Ok(Response::new(ListInstanceTypesResponse { instance_types }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_instance_type(
        &self,
        req: Request<DeleteInstanceTypeRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_cluster()?;
        let name = req.into_inner().name;
        self.0.write(CommandV1::DeleteInstanceType { name }).await?;
        Ok(Response::new(DeleteResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn put_image(&self, req: Request<PutImageRequest>) -> Result<Response<Image>, Status> {
        self.0.auth.authenticate(&req)?.authorize_cluster()?;
        let wire = req.into_inner().image.ok_or_else(|| Status::invalid_argument("image: is required"))?;
        let image = convert::image_from_wire(&wire).map_err(status::invalid)?;
        match self.0.write(CommandV1::PutImage { image }).await? {
            Applied::Image(img) => Ok(Response::new(convert::image_to_wire(&img))),
            other => Err(unexpected(other)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn list_images(&self, req: Request<ListImagesRequest>) -> Result<Response<ListImagesResponse>, Status> {
        self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let images = state.images.values().map(convert::image_to_wire).collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_image(&self, req: Request<DeleteImageRequest>) -> Result<Response<DeleteResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_cluster()?;
        let name = req.into_inner().name;
        self.0.write(CommandV1::DeleteImage { name }).await?;
        Ok(Response::new(DeleteResponse {}))
    }
}

/// A command answered with the wrong kind of outcome: a bug, reported as Internal.
pub fn unexpected(applied: Applied) -> Status {
    Status::internal(format!("unexpected apply outcome: {applied:?}"))
}
